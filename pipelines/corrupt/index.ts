/** Public API of the corruptions package (see docs/corruptions.md). */
export * from './align.ts';
export * from './corrupt.ts';
export * from './edit.ts';
export * from './mask.ts';
export * from './rng.ts';
export * from './targets.ts';
export * from './types.ts';
export * from './vocab.ts';
export * from './windows.ts';
