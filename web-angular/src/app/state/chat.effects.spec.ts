import { TestBed } from '@angular/core/testing';
import { provideMockActions } from '@ngrx/effects/testing';
import { Action } from '@ngrx/store';
import { MockStore, provideMockStore } from '@ngrx/store/testing';
import { ReplaySubject, firstValueFrom, take, toArray } from 'rxjs';

import { ApiService } from '../core/api.service';
import { Outgoing, SendReceipt, StompService } from '../core/stomp.service';
import { chatActions, liveActions } from './actions';
import { ChatEffects, refusalText } from './chat.effects';
import { chatFeature } from './chat.feature';
import { roomsFeature } from './rooms.feature';
import { sessionFeature } from './session.feature';

describe('ChatEffects', () => {
  let actions$: ReplaySubject<Action>;
  let sent: Outgoing[];
  let answer: (o: Outgoing) => Promise<SendReceipt>;

  beforeEach(() => {
    actions$ = new ReplaySubject<Action>(1);
    sent = [];
    TestBed.configureTestingModule({
      providers: [
        ChatEffects,
        provideMockActions(() => actions$),
        provideMockStore({
          selectors: [
            { selector: sessionFeature.selectUser, value: { id: 7, username: 'me', display_name: 'Me', avatar_ref: null } },
            {
              selector: chatFeature.selectRooms,
              value: {
                4: {
                  messages: { ids: [], entities: {} },
                  olderCursor: null,
                  loadingOlder: false,
                  pending: [{ nonce: 'n-old', body: 'again', attachments: ['u1'], sentAtMs: 1, error: { code: 'x', message: 'y' } }],
                },
              },
            },
          ],
        }),
        {
          provide: StompService,
          useValue: {
            send: (o: Outgoing) => {
              sent.push(o);
              return answer(o);
            },
          },
        },
        { provide: ApiService, useValue: {} },
      ],
    });
  });

  it('shows a message as pending, then at the seq its RECEIPT gave, under the nonce it was sent with', async () => {
    answer = () => Promise.resolve({ seq: 12, messageId: 'mid' });
    const effects = TestBed.inject(ChatEffects);
    const out = firstValueFrom(effects.send$.pipe(take(2), toArray()));
    actions$.next(chatActions.send({ roomId: 4, body: 'hi', attachments: ['u9'] }));
    const [pending, done] = await out;
    expect(pending).toMatchObject({ type: chatActions.pendingAdded.type, roomId: 4, body: 'hi', attachments: ['u9'] });
    const nonce = (pending as ReturnType<typeof chatActions.pendingAdded>).nonce;
    expect(nonce).toMatch(/^[0-9a-f-]{36}$/);
    expect(done).toMatchObject({ type: chatActions.sent.type, roomId: 4, nonce, seq: 12, messageId: 'mid', senderId: 7 });
    expect(sent).toEqual([{ roomId: 4, body: 'hi', nonce, attachments: ['u9'] }]);
  });

  it('fails a refused message, and a retry sends it again with the same nonce', async () => {
    answer = () => Promise.reject({ code: 'rate_limited', message: 'slow down' });
    const effects = TestBed.inject(ChatEffects);
    const failed = firstValueFrom(effects.send$.pipe(take(2), toArray()));
    actions$.next(chatActions.send({ roomId: 4, body: 'hi', attachments: [] }));
    expect((await failed)[1]).toMatchObject({ type: chatActions.sendFailed.type, error: { code: 'rate_limited' } });

    answer = () => Promise.resolve({ seq: 13, messageId: 'm13' });
    const retried = firstValueFrom(effects.retry$);
    actions$.next(chatActions.retry({ roomId: 4, nonce: 'n-old' }));
    expect(await retried).toMatchObject({ type: chatActions.sent.type, nonce: 'n-old', seq: 13 });
    expect(sent.at(-1)).toEqual({ roomId: 4, body: 'again', nonce: 'n-old', attachments: ['u1'] });
  });

  it('after a reconnection, loads the open room’s first page when it could not be loaded before', async () => {
    const store = TestBed.inject(MockStore);
    store.overrideSelector(roomsFeature.selectSelectedId, 5);
    store.overrideSelector(chatFeature.selectRooms, {
      5: { messages: { ids: [], entities: {} }, olderCursor: undefined, loadingOlder: false, pending: [] },
    });
    store.refreshState();
    const effects = TestBed.inject(ChatEffects);
    const out = firstValueFrom(effects.firstPageAgain$.pipe(take(1), toArray()));
    actions$.next(liveActions.connection({ state: 'connecting' }));
    actions$.next(liveActions.connection({ state: 'connected' }));
    expect(await out).toEqual([chatActions.loadOlder({ roomId: 5 })]);
  });

  it('sends edits and deletes as events of their target', async () => {
    answer = () => Promise.reject({ code: 'not_author', message: 'not yours' });
    const effects = TestBed.inject(ChatEffects);
    const out = firstValueFrom(effects.edit$);
    actions$.next(chatActions.edit({ roomId: 4, seq: 3, body: 'fixed' }));
    expect(await out).toMatchObject({ type: chatActions.editFailed.type, error: { code: 'not_author' } });
    expect(sent[0]).toMatchObject({ roomId: 4, body: 'fixed', event: 'edit', targetSeq: 3 });
    expect(refusalText({ code: 'not_author', message: 'x' })).toBe('Only its author can edit a message.');
  });
});
