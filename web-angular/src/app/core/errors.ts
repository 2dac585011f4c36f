import { HttpErrorResponse } from '@angular/common/http';

import { ApiErrorBody, AppError } from './api.types';

function isApiErrorBody(body: unknown): body is ApiErrorBody {
  if (typeof body !== 'object' || body === null || !('error' in body)) {
    return false;
  }
  const error = (body as { error: unknown }).error;
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string' &&
    typeof (error as { message?: unknown }).message === 'string'
  );
}

/** The app's view of any failed request: the server's code and message when it sent its JSON error. */
export function toAppError(err: unknown): AppError {
  if (err instanceof HttpErrorResponse) {
    const retry = Number(err.headers?.get('Retry-After'));
    const retryAfterSecs = Number.isFinite(retry) && retry > 0 ? retry : undefined;
    if (isApiErrorBody(err.error)) {
      return { code: err.error.error.code, message: err.error.error.message, retryAfterSecs };
    }
    if (err.status === 0) {
      return { code: 'network', message: 'The server cannot be reached. Check your connection.' };
    }
    return { code: `http_${err.status}`, message: err.statusText || `HTTP ${err.status}`, retryAfterSecs };
  }
  if (err instanceof Error) {
    return { code: 'client', message: err.message };
  }
  return { code: 'client', message: String(err) };
}

/**
 * A STOMP ERROR's message as an AppError. The server starts the messages of refusals with a stable
 * code (`not_author: …`, `busy: …`); other errors are plain sentences.
 */
export function stompError(message: string): AppError {
  const match = /^([a-z_]+): (.*)$/s.exec(message);
  if (match?.[1] && match[2] !== undefined) {
    return { code: match[1], message: match[2] };
  }
  return { code: 'stomp', message };
}
