import { HttpErrorResponse, HttpHandlerFn, HttpInterceptorFn, HttpRequest } from '@angular/common/http';
import { inject } from '@angular/core';
import { Observable, catchError, from, switchMap, throwError } from 'rxjs';

import { SessionService } from './session.service';

/** Routes that take no access token (they start or refresh a session). */
function isPublic(req: HttpRequest<unknown>): boolean {
  // The blob store's forms and URLs are signed by themselves.
  return req.url.startsWith('/api/auth/') || req.url.startsWith('/api/users/available') || req.url.startsWith('/api/blobs');
}

function withToken(req: HttpRequest<unknown>, token: string | null): HttpRequest<unknown> {
  return token ? req.clone({ setHeaders: { Authorization: `Bearer ${token}` } }) : req;
}

/**
 * Adds the access token to API requests (refreshing it first when it is about to expire), and on a
 * 401 refreshes once and retries, so an expired token is never the user's problem.
 */
export const authInterceptor: HttpInterceptorFn = (req, next: HttpHandlerFn): Observable<never> | ReturnType<HttpHandlerFn> => {
  if (!req.url.startsWith('/api/') || isPublic(req)) {
    return next(req);
  }
  const session = inject(SessionService);
  return from(session.accessToken()).pipe(
    switchMap((token) => next(withToken(req, token))),
    catchError((err: unknown) => {
      if (!(err instanceof HttpErrorResponse) || err.status !== 401 || !session.session()) {
        return throwError(() => err);
      }
      return from(session.refresh()).pipe(
        switchMap((token) => (token ? next(withToken(req, token)) : throwError(() => err))),
      );
    }),
  );
};
