/**
 * An error caused by the user's input (a flag, a file, a row). The CLI prints its message without a stack
 * trace and exits with status 2, so messages must name the file, row or flag at fault and what to do.
 */
export class UserError extends Error {
  override name = 'UserError';
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
