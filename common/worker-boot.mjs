// Registers the TypeScript loader inside a worker thread, then runs the real entry (see worker.ts).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.__entry);
