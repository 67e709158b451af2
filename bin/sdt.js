#!/usr/bin/env node
// Entry shim: registers the TypeScript loader (tsx) so the CLI runs from source with no build step.
import { register } from 'tsx/esm/api';

register();
// A reader that stops early (`sdt eval ... | head -1`) closes the pipe: stop quietly as other CLIs do.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
