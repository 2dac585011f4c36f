import { Injectable, inject } from '@angular/core';
import { Actions, createEffect, ofType } from '@ngrx/effects';
import { Store } from '@ngrx/store';
import { Subject, filter, interval, timer, map, mergeMap, switchMap, takeUntil, tap } from 'rxjs';

import { frameSeq } from '../core/frames';
import { StompService } from '../core/stomp.service';
import { authActions, chatActions, liveActions, roomsActions, toastActions } from './actions';
import { roomsFeature } from './rooms.feature';

let toastIds = 0;
const TOAST_MS = 8000;
/** A toast's action, with a fresh id. */
export function toast(text: string, kind: 'error' | 'info' = 'error') {
  return toastActions.show({ id: ++toastIds, text, kind });
}

/**
 * The live connection: connects once signed in, follows the caller's queue, and keeps one
 * subscription per listed room (so the list shows each room's newest message and unread count live),
 * each resuming after the last seq it delivered.
 */
@Injectable()
export class LiveEffects {
  private readonly actions$ = inject(Actions);
  private readonly stomp = inject(StompService);
  private readonly store = inject(Store);
  private readonly signedOut$ = this.actions$.pipe(ofType(authActions.signedOut));
  private readonly followed = new Set<number>();
  private readonly unfollowed = new Subject<number>();
  /** The highest seq each room's subscription delivered: its `since` on the next (re)subscribe. */
  private readonly since = new Map<number, number>();
  private userId: number | null = null;

  connect$ = createEffect(
    () =>
      this.actions$.pipe(
        ofType(authActions.signedIn),
        tap(({ user }) => {
          this.userId = user.id;
          this.stomp.start();
        }),
      ),
    { dispatch: false },
  );

  connection$ = createEffect(() => this.stomp.state$.pipe(map((state) => liveActions.connection({ state }))));

  userEvents$ = createEffect(() =>
    this.actions$.pipe(
      ofType(authActions.signedIn),
      switchMap(() => this.stomp.userEvents().pipe(takeUntil(this.signedOut$))),
      map((e) => (e.type === 'room.added' ? roomsActions.added({ room: e.room }) : liveActions.presence({ users: e.users }))),
    ),
  );

  /** A toast goes away by itself after a while. */
  toastExpiry$ = createEffect(() =>
    this.actions$.pipe(
      ofType(toastActions.show),
      mergeMap(({ id }) => timer(TOAST_MS).pipe(map(() => toastActions.dismiss({ id })))),
    ),
  );

  errors$ = createEffect(() => this.stomp.errors$.pipe(map((e) => toast(e.message))));

  typingTick$ = createEffect(() =>
    this.actions$.pipe(
      ofType(authActions.signedIn),
      switchMap(() => interval(1000).pipe(takeUntil(this.signedOut$))),
      map(() => chatActions.typingExpired({ nowMs: Date.now() })),
    ),
  );

  /** Subscribes each room as it enters the list and unsubscribes it as it leaves. */
  rooms$ = createEffect(() =>
    this.store.select(roomsFeature.selectAllRooms).pipe(
      mergeMap((rooms) => {
        const listed = new Set(rooms.map((r) => r.id));
        for (const id of this.followed) {
          if (!listed.has(id)) {
            this.unfollow(id);
          }
        }
        const added = rooms.filter((r) => !this.followed.has(r.id));
        for (const r of added) {
          this.followed.add(r.id);
          // One item before the newest: the replay of the newest message fills the list's preview.
          this.since.set(r.id, Math.max(0, r.last_seq - 1));
        }
        return added.map((r) => r.id);
      }),
      mergeMap((roomId) => this.liveOf(roomId)),
    ),
  );

  clear$ = createEffect(
    () =>
      this.signedOut$.pipe(
        tap(() => {
          [...this.followed].forEach((id) => this.unfollow(id));
          this.userId = null;
        }),
      ),
    { dispatch: false },
  );

  private unfollow(roomId: number): void {
    this.followed.delete(roomId);
    this.since.delete(roomId);
    this.unfollowed.next(roomId);
  }

  private liveOf(roomId: number) {
    return this.stomp.room(roomId, () => this.since.get(roomId) ?? 0).pipe(
      takeUntil(this.unfollowed.pipe(filter((id) => id === roomId))),
      tap((event) => {
        const seq = frameSeq(event);
        if (seq !== null && seq > (this.since.get(roomId) ?? 0)) {
          this.since.set(roomId, seq);
        }
      }),
      map((event) =>
        chatActions.live({
          roomId,
          event,
          own: this.userId !== null && ownOf(event) === this.userId,
          atMs: Date.now(),
        }),
      ),
    );
  }
}

function ownOf(event: Parameters<typeof chatActions.live>[0]['event']): number | null {
  switch (event.type) {
    case 'message':
      return event.message.sender_id;
    case 'edit':
    case 'delete':
      return event.senderId;
    case 'read':
    case 'typing':
      return event.userId;
  }
}

