import { Worker, type WorkerOptions } from 'node:worker_threads';

const bootUrl = new URL('./worker-boot.mjs', import.meta.url);

/**
 * Start a worker thread running a TypeScript module. Node 20 does not pass the tsx loader to workers,
 * so a small JS boot file registers it in the worker before importing the entry.
 */
export function spawnTsWorker(entry: URL, workerData: unknown, options: WorkerOptions = {}): Worker {
  return new Worker(bootUrl, { ...options, workerData: { __entry: entry.href, data: workerData } });
}
