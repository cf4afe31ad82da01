/**
 * An error meant for the operator: its message is one line that says what is wrong and what to do.
 * The CLI prints it as-is and exits non-zero; anything else is a bug and gets a stack trace.
 */
export class OperatorError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'OperatorError';
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
