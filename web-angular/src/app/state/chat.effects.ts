import { Injectable, inject } from '@angular/core';
import { Actions, createEffect, ofType } from '@ngrx/effects';
import { Store } from '@ngrx/store';
import { EMPTY, catchError, concat, filter, from, groupBy, map, mergeMap, of, take, tap, throttleTime, withLatestFrom } from 'rxjs';

import { ApiService } from '../core/api.service';
import { AppError } from '../core/api.types';
import { toAppError } from '../core/errors';
import { StompService } from '../core/stomp.service';
import { chatActions, liveActions, roomsActions } from './actions';
import { chatFeature } from './chat.feature';
import { toast } from './live.effects';
import { RoomEntry, roomsFeature } from './rooms.feature';
import { sessionFeature } from './session.feature';

/** A nonce for a new message: the server's idempotency key, so a resend never doubles it. */
export function newNonce(): string {
  return crypto.randomUUID();
}

/** What a refusal of a SEND says to the user. */
export function refusalText(e: AppError): string {
  switch (e.code) {
    case 'not_author':
      return 'Only its author can edit a message.';
    case 'not_allowed':
      return 'Only its author or an owner of the room can delete a message.';
    case 'message_deleted':
      return 'That message was deleted.';
    case 'busy':
      return 'The room is busy: try again in a moment.';
    default:
      return e.message;
  }
}

/** History, sending (with nonces and receipts), edits, deletes, typing and read markers. */
@Injectable()
export class ChatEffects {
  private readonly actions$ = inject(Actions);
  private readonly api = inject(ApiService);
  private readonly stomp = inject(StompService);
  private readonly store = inject(Store);

  loadOlder$ = createEffect(() =>
    this.actions$.pipe(
      ofType(chatActions.loadOlder),
      withLatestFrom(this.store.select(chatFeature.selectRooms)),
      // One page at a time per room; a cursor of null means the first message is loaded.
      filter(([{ roomId }, rooms]) => rooms[roomId]?.olderCursor !== null),
      mergeMap(([{ roomId }, rooms]) =>
        this.api.history(roomId, rooms[roomId]?.olderCursor ?? undefined).pipe(
          map((page) => chatActions.historyLoaded({ roomId, page })),
          catchError((e: unknown) => of(chatActions.historyFailed({ roomId, error: toAppError(e) }))),
        ),
      ),
    ),
  );

  /** The open room's first page, again after a (re)connection when it could not be loaded. */
  firstPageAgain$ = createEffect(() =>
    this.actions$.pipe(
      ofType(liveActions.connection),
      filter(({ state }) => state === 'connected'),
      withLatestFrom(this.store.select(roomsFeature.selectSelectedId), this.store.select(chatFeature.selectRooms)),
      map(([, id, rooms]) => (id !== null && rooms[id]?.olderCursor === undefined && !rooms[id]?.loadingOlder ? id : null)),
      filter((roomId): roomId is number => roomId !== null),
      map((roomId) => chatActions.loadOlder({ roomId })),
    ),
  );

  send$ = createEffect(() =>
    this.actions$.pipe(
      ofType(chatActions.send),
      mergeMap(({ roomId, body, attachments }) => {
        const nonce = newNonce();
        return concat(
          of(chatActions.pendingAdded({ roomId, nonce, body, attachments, sentAtMs: Date.now() })),
          this.sending(roomId, nonce, body, attachments),
        );
      }),
    ),
  );

  /** A failed message sent again, with its nonce: stored once however often it is retried. */
  retry$ = createEffect(() =>
    this.actions$.pipe(
      ofType(chatActions.retry),
      withLatestFrom(this.store.select(chatFeature.selectRooms)),
      mergeMap(([{ roomId, nonce }, rooms]) => {
        const p = rooms[roomId]?.pending.find((x) => x.nonce === nonce);
        return p ? this.sending(roomId, nonce, p.body, p.attachments) : EMPTY;
      }),
    ),
  );

  edit$ = createEffect(() =>
    this.actions$.pipe(
      ofType(chatActions.edit, chatActions.delete),
      mergeMap((a) => {
        const edit = a.type === chatActions.edit.type;
        const body = 'body' in a ? a.body : '';
        return from(
          this.stomp.send({ roomId: a.roomId, body, nonce: newNonce(), event: edit ? 'edit' : 'delete', targetSeq: a.seq }),
        ).pipe(
          mergeMap(() => EMPTY),
          catchError((e: AppError) => of(chatActions.editFailed({ roomId: a.roomId, error: e }))),
        );
      }),
    ),
  );

  refusals$ = createEffect(() =>
    this.actions$.pipe(
      ofType(chatActions.sendFailed, chatActions.editFailed, chatActions.historyFailed),
      map(({ error }) => toast(refusalText(error))),
    ),
  );

  /** "Typing…" at most once a second per room (the server ignores anything sooner). */
  typing$ = createEffect(
    () =>
      this.actions$.pipe(
        ofType(chatActions.typing),
        groupBy(({ roomId }) => roomId),
        mergeMap((room) => room.pipe(throttleTime(1000))),
        tap(({ roomId }) => this.stomp.typing(roomId)),
      ),
    { dispatch: false },
  );

  markRead$ = createEffect(
    () =>
      this.actions$.pipe(
        ofType(chatActions.markRead),
        groupBy(({ roomId }) => roomId),
        mergeMap((room) => room.pipe(throttleTime(500, undefined, { leading: true, trailing: true }))),
        tap(({ roomId, seq }) => this.stomp.read(roomId, seq)),
      ),
    { dispatch: false },
  );

  /** A message arriving in the room on screen is read at once (while the page is visible). */
  readOnArrival$ = createEffect(() =>
    this.actions$.pipe(
      ofType(chatActions.live),
      filter(({ event, own }) => event.type === 'message' && !own),
      withLatestFrom(this.store.select(roomsFeature.selectSelectedId)),
      filter(([{ roomId }, selected]) => roomId === selected && document.visibilityState === 'visible'),
      map(([{ roomId, event }]) => chatActions.markRead({ roomId, seq: event.type === 'message' ? event.message.seq : 0 })),
    ),
  );

  /** Opening a room reads it up to its newest message. */
  readOnOpen$ = createEffect(() =>
    this.actions$.pipe(
      ofType(roomsActions.select),
      withLatestFrom(this.store.select(roomsFeature.selectRoomEntities)),
      map(([{ roomId }, rooms]) => (roomId === null ? undefined : rooms[roomId])),
      filter((room): room is RoomEntry => room !== undefined && room.last_seq > room.last_read_seq),
      map((room) => chatActions.markRead({ roomId: room.id, seq: room.last_seq })),
    ),
  );

  private sending(roomId: number, nonce: string, body: string, attachments: string[]) {
    return this.store.select(sessionFeature.selectUser).pipe(
      filter((u) => u !== null),
      take(1),
      map((u) => u.id),
      mergeMap((senderId) =>
        from(this.stomp.send({ roomId, body, nonce, attachments })).pipe(
          map((r) => chatActions.sent({ roomId, nonce, seq: r.seq, messageId: r.messageId, senderId, atMs: Date.now() })),
          catchError((e: AppError) => of(chatActions.sendFailed({ roomId, nonce, error: e }))),
        ),
      ),
    );
  }
}
