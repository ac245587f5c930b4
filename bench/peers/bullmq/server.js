// R-bullmq's web side: Express with BullMQ's Queue, as their docs show them. POST adds a
// job; the status route reads it back with Job.fromId (one HGETALL) and answers its state.
// Express's default weak ETag stays on, so a client repeating the ETag it was given gets a
// 304, as from ours. WEB_PROCESSES > 1 runs that many processes under node:cluster (the
// Node way to use every core); 1 runs a single process.
"use strict";
const cluster = require("node:cluster");
const os = require("node:os");
const express = require("express");
const { Queue, Job } = require("bullmq");
const { connection, QUEUE } = require("./redis");

const PROCESSES = Number(process.env.WEB_PROCESSES || os.availableParallelism());
const PORT = Number(process.env.PORT || 3000);

if (PROCESSES > 1 && cluster.isPrimary) {
  for (let i = 0; i < PROCESSES; i++) cluster.fork();
  cluster.on("exit", (worker, code) => {
    if (code !== 0) console.error(`web process ${worker.process.pid} exited with ${code}`);
  });
} else {
  serve();
}

function serve() {
  const queue = new Queue(QUEUE, { connection });
  const app = express();
  app.use(express.json());

  app.post("/api/v1/jobs/website-analysis", async (req, res, next) => {
    try {
      const body = req.body;
      if (!body || typeof body.url !== "string") {
        return res.status(400).json({ error: "url is required" });
      }
      const job = await queue.add("website-analysis",
        { url: body.url, resultBytes: Number(body.resultBytes || 0) });
      res.status(201).json({ jobId: job.id });
    } catch (error) { next(error); }
  });

  app.get("/api/v1/jobs/:jobId/status", async (req, res, next) => {
    try {
      const job = await Job.fromId(queue, req.params.jobId);
      if (!job) return res.status(404).json({ error: "job not found" });
      res.json(statusOf(job));
    } catch (error) { next(error); }
  });

  app.get("/healthz", (req, res) => res.json({ status: "ok" }));

  app.listen(PORT, "127.0.0.1");
}

function statusOf(job) {
  const progress = typeof job.progress === "object" ? job.progress : {};
  const document = { jobId: job.id, status: "queued", progress: 0, currentStep: null };
  if (job.finishedOn && job.failedReason) {
    return { ...document, status: "failed", ...progress, error: job.failedReason };
  }
  if (job.finishedOn) {
    return { ...document, status: "succeeded", progress: 100, currentStep: progress.currentStep ?? null,
             result: job.returnvalue };
  }
  if (job.processedOn) return { ...document, status: "running", ...progress };
  return document;
}
