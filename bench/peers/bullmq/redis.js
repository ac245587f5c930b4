// The Redis connection both sides use (REDIS_URL), and the queue's name.
"use strict";
const url = new URL(process.env.REDIS_URL || "redis://127.0.0.1:6379");

module.exports = {
  QUEUE: "website-analysis",
  // BullMQ requires maxRetriesPerRequest: null on a Worker's connection.
  connection: { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null },
};
