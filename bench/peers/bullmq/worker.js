// R-bullmq's worker: a BullMQ Worker of concurrency WORKER_CONCURRENCY (4, as ours) running
// the same job as ours: four steps, job.updateProgress after each (BENCH_STEP_SECONDS of
// waiting per step; 0 by default). The result is { success: true }, padded to resultBytes
// for the poll figures.
"use strict";
const { Worker } = require("bullmq");
const { connection, QUEUE } = require("./redis");

const STEPS = [["analyze", 30], ["audiences", 20], ["pitches", 20], ["images", 30]];
const STEP_MS = Number(process.env.BENCH_STEP_SECONDS || 0) * 1000;
const CONCURRENCY = Number(process.env.WORKER_CONCURRENCY || 4);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const worker = new Worker(QUEUE, async (job) => {
  let progress = 0;
  for (let i = 0; i < STEPS.length; i++) {
    if (STEP_MS) await sleep(STEP_MS);
    progress += STEPS[i][1];
    const following = i + 1 < STEPS.length ? STEPS[i + 1][0] : STEPS[i][0];
    await job.updateProgress({ progress, currentStep: following });
  }
  const result = { success: true };
  if (job.data.resultBytes) result.notes = "x".repeat(job.data.resultBytes);
  return result;
}, { connection, concurrency: CONCURRENCY });

worker.on("failed", (job, error) => console.error(`job ${job?.id} failed: ${error}`));
const stop = async () => {
  setTimeout(() => process.exit(1), 5000).unref(); // a close that hangs does not hold the exit
  await worker.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
