import { Injectable, inject } from '@angular/core';
import { Router } from '@angular/router';
import { Actions, createEffect, ofType } from '@ngrx/effects';
import { Store } from '@ngrx/store';
import {
  EMPTY,
  Observable,
  catchError,
  concatMap,
  exhaustMap,
  expand,
  filter,
  from,
  map,
  merge,
  mergeMap,
  of,
  reduce,
  switchMap,
  tap,
  withLatestFrom,
} from 'rxjs';

import { ApiService } from '../core/api.service';
import { Member, Page, Room, RoomSummary } from '../core/api.types';
import { toAppError } from '../core/errors';
import { authActions, chatActions, liveActions, roomsActions } from './actions';
import { chatFeature } from './chat.feature';
import { toast } from './live.effects';
import { roomsFeature } from './rooms.feature';

/** At most this many pages of rooms (100 each) are listed. */
const MAX_ROOM_PAGES = 10;
/** Names of at most this many DM peers are looked up at once (4 requests at a time). */
const MAX_PEER_LOOKUPS = 200;

/** The room list and what changes it: create, join, DMs, leave; opening a room loads its members and history. */
@Injectable()
export class RoomsEffects {
  private readonly actions$ = inject(Actions);
  private readonly api = inject(ApiService);
  private readonly router = inject(Router);
  private readonly store = inject(Store);

  /**
   * The list loads on sign-in, after a room was opened, and on every (re)connection of the live
   * connection: a load that failed while the node was away is made good, and counts caught up.
   */
  load$ = createEffect(() =>
    this.actions$.pipe(
      ofType(authActions.signedIn, roomsActions.load, roomsActions.opened, liveActions.connection),
      filter((a) => a.type !== liveActions.connection.type || ('state' in a && a.state === 'connected')),
      switchMap(() =>
        this.allRooms().pipe(
          map((rooms) => roomsActions.loaded({ rooms })),
          catchError((e: unknown) => of(roomsActions.failed({ error: toAppError(e) }))),
        ),
      ),
    ),
  );

  create$ = createEffect(() =>
    this.actions$.pipe(
      ofType(roomsActions.create),
      exhaustMap(({ name }) => this.opening(this.api.createRoom(name))),
    ),
  );

  join$ = createEffect(() =>
    this.actions$.pipe(
      ofType(roomsActions.join),
      exhaustMap(({ roomId }) => this.opening(this.api.joinRoom(roomId))),
    ),
  );

  openDm$ = createEffect(() =>
    this.actions$.pipe(
      ofType(roomsActions.openDm),
      exhaustMap(({ userId }) => this.opening(this.api.openDm(userId))),
    ),
  );

  /** A room just created, joined or opened as a DM: show it. */
  show$ = createEffect(
    () =>
      this.actions$.pipe(
        ofType(roomsActions.opened),
        tap(({ room }) => void this.router.navigate(['/rooms', room.id])),
      ),
    { dispatch: false },
  );

  leave$ = createEffect(() =>
    this.actions$.pipe(
      ofType(roomsActions.leave),
      concatMap(({ roomId }) =>
        this.api.leaveRoom(roomId).pipe(
          tap(() => void this.router.navigateByUrl('/rooms')),
          map(() => roomsActions.left({ roomId })),
          catchError((e: unknown) => of(roomsActions.failed({ error: toAppError(e) }))),
        ),
      ),
    ),
  );

  /** Opening a room loads its members (names, read markers) and, the first time, its newest page. */
  select$ = createEffect(() =>
    this.actions$.pipe(
      ofType(roomsActions.select),
      map(({ roomId }) => roomId),
      filter((roomId): roomId is number => roomId !== null),
      withLatestFrom(this.store.select(chatFeature.selectRooms)),
      mergeMap(([roomId, timelines]) => {
        const members = this.api.members(roomId).pipe(
          map((m) => roomsActions.membersLoaded({ roomId, members: m })),
          catchError(() => EMPTY),
        );
        const first = timelines[roomId]?.olderCursor === undefined ? of(chatActions.loadOlder({ roomId })) : EMPTY;
        return merge(first, members);
      }),
    ),
  );

  /** A DM is listed under its peer's name: learn the names of the peers not known yet. */
  peers$ = createEffect(() =>
    this.actions$.pipe(
      ofType(roomsActions.loaded, roomsActions.added),
      map((a) => ('rooms' in a ? a.rooms : [a.room])),
      withLatestFrom(this.store.select(roomsFeature.selectPeople)),
      map(([rooms, people]) =>
        rooms.filter((r) => r.kind === 'dm' && r.dm_peer !== null && !people[r.dm_peer]).slice(0, MAX_PEER_LOOKUPS),
      ),
      filter((dms) => dms.length > 0),
      mergeMap((dms) =>
        from(dms).pipe(
          mergeMap((r) => this.api.members(r.id, 2).pipe(map((m) => [r.id, m] as const), catchError(() => EMPTY)), 4),
          reduce((peers: Record<number, Member[]>, [id, m]) => ({ ...peers, [id]: m }), {}),
          map((peers) => roomsActions.peersLoaded({ peers })),
        ),
      ),
    ),
  );

  failed$ = createEffect(() =>
    this.actions$.pipe(
      ofType(roomsActions.failed),
      map(({ error }) => toast(error.message)),
    ),
  );

  private opening(call: Observable<Room>) {
    return call.pipe(
      map((room) => roomsActions.opened({ room })),
      catchError((e: unknown) => of(roomsActions.failed({ error: toAppError(e) }))),
    );
  }

  /** Every page of the caller's rooms (up to MAX_ROOM_PAGES). */
  private allRooms(): Observable<RoomSummary[]> {
    let pages = 0;
    return this.api.rooms().pipe(
      expand((page: Page<RoomSummary>) =>
        page.next !== null && ++pages < MAX_ROOM_PAGES ? this.api.rooms(page.next) : EMPTY,
      ),
      reduce((all: RoomSummary[], page) => all.concat(page.items), []),
    );
  }
}
