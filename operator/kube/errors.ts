// Errors of the Kubernetes API, classified by HTTP status and Status.reason, so callers branch on meaning.

/** The `Status` object kube-apiserver returns with a failed request (and in a watch ERROR event). */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; group?: string; kind?: string; causes?: { reason?: string; message?: string; field?: string }[] };
}

/** A request the API server refused (or that could not reach it: status 0). */
export class KubeApiError extends Error {
  override readonly name = "KubeApiError";
  /** HTTP status; 0 when no response arrived (connection refused, reset, timeout). */
  readonly status: number;
  /** Status.reason (`NotFound`, `Conflict`, `AlreadyExists`, `Invalid`, `Expired`, `Gone`, …), or "" when absent. */
  readonly reason: string;
  /** The parsed response body (a Status) or its text. */
  readonly body?: unknown;
  /** `VERB path` of the request. */
  readonly request: string;
  constructor(message: string, init: { status: number; reason?: string; body?: unknown; request: string; cause?: unknown }) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.reason = init.reason ?? "";
    this.body = init.body;
    this.request = init.request;
  }

  /** From an HTTP response: the Status message when the body is one, the text otherwise. */
  static fromResponse(request: string, status: number, text: string): KubeApiError {
    let body: unknown = text;
    let s: KubeStatus | undefined;
    try {
      body = JSON.parse(text);
      if (body && typeof body === "object" && (body as KubeStatus).kind === "Status") s = body as KubeStatus;
    } catch {
      /* not JSON: keep the text */
    }
    const detail = s?.message ?? (text.trim().slice(0, 300) || `HTTP ${status}`);
    return new KubeApiError(`${request}: ${status} ${s?.reason ?? ""}${s?.reason ? ": " : ""}${detail}`, {
      status,
      reason: s?.reason ?? "",
      body,
      request,
    });
  }

  /** From a watch ERROR event's Status object. */
  static fromStatus(request: string, s: KubeStatus): KubeApiError {
    const status = s.code ?? 500;
    return new KubeApiError(`${request}: watch error ${status} ${s.reason ?? ""}: ${s.message ?? ""}`, {
      status,
      reason: s.reason ?? "",
      body: s,
      request,
    });
  }
}

const api = (e: unknown): KubeApiError | undefined => (e instanceof KubeApiError ? e : undefined);

export function isNotFound(e: unknown): boolean {
  return api(e)?.status === 404;
}
/** 409 with reason Conflict: a stale resourceVersion (optimistic concurrency lost). Not AlreadyExists. */
export function isConflict(e: unknown): boolean {
  const a = api(e);
  return a?.status === 409 && a.reason !== "AlreadyExists";
}
export function isAlreadyExists(e: unknown): boolean {
  const a = api(e);
  return a?.status === 409 && a.reason === "AlreadyExists";
}
/** The requested resourceVersion is no longer in the history (410, or reason Expired/Gone): relist. */
export function isGone(e: unknown): boolean {
  const a = api(e);
  return a !== undefined && (a.status === 410 || a.reason === "Expired" || a.reason === "Gone");
}
export function isInvalid(e: unknown): boolean {
  const a = api(e);
  return a?.status === 422 || a?.reason === "Invalid";
}
