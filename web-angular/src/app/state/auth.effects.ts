import { Injectable, inject } from '@angular/core';
import { toObservable } from '@angular/core/rxjs-interop';
import { Router } from '@angular/router';
import { Actions, ROOT_EFFECTS_INIT, createEffect, ofType } from '@ngrx/effects';
import { Store } from '@ngrx/store';
import { catchError, exhaustMap, filter, from, map, of, switchMap, tap, withLatestFrom } from 'rxjs';

import { ApiService } from '../core/api.service';
import { Session } from '../core/api.types';
import { toAppError } from '../core/errors';
import { SessionService } from '../core/session.service';
import { StompService } from '../core/stomp.service';
import { authActions } from './actions';
import { sessionFeature } from './session.feature';

/** Sign-in, sign-up, sign-out and the profile: the session's tokens live in SessionService. */
@Injectable()
export class AuthEffects {
  private readonly actions$ = inject(Actions);
  private readonly api = inject(ApiService);
  private readonly session = inject(SessionService);
  private readonly stomp = inject(StompService);
  private readonly router = inject(Router);
  private readonly store = inject(Store);
  private readonly stored$ = toObservable(this.session.session);

  /** A session kept from an earlier visit signs the user in at once. */
  restore$ = createEffect(() =>
    this.actions$.pipe(
      ofType(ROOT_EFFECTS_INIT),
      map(() => this.session.user()),
      filter((user) => user !== null),
      map((user) => authActions.signedIn({ user })),
    ),
  );

  login$ = createEffect(() =>
    this.actions$.pipe(
      ofType(authActions.login),
      exhaustMap(({ username, password }) =>
        this.api.login(username, password).pipe(
          map((s) => this.started(s)),
          catchError((e: unknown) => of(authActions.failed({ error: toAppError(e) }))),
        ),
      ),
    ),
  );

  register$ = createEffect(() =>
    this.actions$.pipe(
      ofType(authActions.register),
      exhaustMap(({ username, password, displayName }) =>
        this.api.register(username, password, displayName).pipe(
          map((s) => this.started(s)),
          catchError((e: unknown) => of(authActions.failed({ error: toAppError(e) }))),
        ),
      ),
    ),
  );

  /** After signing in on the login or sign-up page, go to the rooms (or where the guard came from). */
  enter$ = createEffect(
    () =>
      this.actions$.pipe(
        ofType(authActions.signedIn),
        filter(() => /^\/(login|register)/.test(this.router.url)),
        tap(() => {
          const back = this.router.parseUrl(this.router.url).queryParams['returnUrl'];
          void this.router.navigateByUrl(typeof back === 'string' && back.startsWith('/') ? back : '/rooms');
        }),
      ),
    { dispatch: false },
  );

  logout$ = createEffect(() =>
    this.actions$.pipe(
      ofType(authActions.logout),
      exhaustMap(() => {
        const refresh = this.session.session()?.refreshToken;
        const told = refresh ? this.api.logout(refresh).pipe(catchError(() => of(undefined))) : of(undefined);
        return told.pipe(map(() => authActions.signedOut()));
      }),
    ),
  );

  /** The server ended the session (a refresh was refused): back to the login page. */
  lost$ = createEffect(() =>
    this.stored$.pipe(
      withLatestFrom(this.store.select(sessionFeature.selectUser)),
      filter(([stored, user]) => stored === null && user !== null),
      map(() => authActions.signedOut()),
    ),
  );

  signedOut$ = createEffect(
    () =>
      this.actions$.pipe(
        ofType(authActions.signedOut),
        switchMap(() => {
          this.session.clear();
          return from(this.stomp.stop());
        }),
        tap(() => void this.router.navigateByUrl('/login')),
      ),
    { dispatch: false },
  );

  updateProfile$ = createEffect(() =>
    this.actions$.pipe(
      ofType(authActions.updateProfile),
      exhaustMap(({ displayName }) =>
        this.api.updateMe(displayName).pipe(
          tap((user) => this.session.setUser(user)),
          map((user) => authActions.profileUpdated({ user })),
          catchError((e: unknown) => of(authActions.failed({ error: toAppError(e) }))),
        ),
      ),
    ),
  );

  private started(s: Session) {
    this.session.start(s);
    return authActions.signedIn({ user: s.user });
  }
}

