#!/usr/bin/env node
// Entry shim: registers the TypeScript loader (tsx) so the CLI runs from source with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
