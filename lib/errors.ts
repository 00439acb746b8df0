/**
 * Every error seqtune raises on purpose is a SeqtuneError with a stable `code`, so callers can
 * branch on it and the CLI can print a one-line message instead of a stack trace.
 */
export type ErrorCode =
  | 'ERR_SHAPE'
  | 'ERR_DTYPE'
  | 'ERR_DEVICE'
  | 'ERR_DISPOSED'
  | 'ERR_INDEX'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_ARGUMENT'
  | 'ERR_NOT_IMPLEMENTED'
  | 'ERR_CUDA'
  | 'ERR_NON_FINITE'
  | 'ERR_NATIVE_LOAD'
  | 'ERR_IO'
  | 'ERR_CONFIG'
  | 'ERR_DATA'
  | 'ERR_HUB'
  | 'ERR_INTERNAL';

export class SeqtuneError extends Error {
  readonly code: ErrorCode;
  constructor(message: string, code: ErrorCode | string = 'ERR_INTERNAL') {
    super(message);
    this.name = 'SeqtuneError';
    this.code = code as ErrorCode;
  }
}

export function isSeqtuneError(error: unknown, code?: ErrorCode): error is SeqtuneError {
  return error instanceof SeqtuneError && (code === undefined || error.code === code);
}
