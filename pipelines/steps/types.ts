/** A dropped record: a stable reason code (counted in the manifest) and a detail for --rejects-out. */
export interface Reject {
  reason: string;
  detail: string;
}

export const reject = (reason: string, detail: string): Reject => ({ reason, detail });
export const isReject = (v: unknown): v is Reject =>
  typeof v === 'object' && v !== null && 'reason' in v && 'detail' in v;
