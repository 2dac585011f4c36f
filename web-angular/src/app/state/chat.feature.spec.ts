import { Message } from '../core/api.types';
import { RoomEvent } from '../core/frames';
import { chatActions, roomsActions } from './actions';
import { ChatState, TYPING_SHOWN_MS, chatFeature, messagesAdapter } from './chat.feature';

const { reducer } = chatFeature;

function msg(seq: number, body = `m${seq}`, senderId = 2): Message {
  return { room_id: 1, seq, message_id: `id${seq}`, sender_id: senderId, body, created_at_ms: seq, attachments: [], content_type: 'text/plain' };
}

function live(event: RoomEvent, atMs = 0) {
  return chatActions.live({ roomId: 1, event, own: false, atMs });
}

function seqs(s: ChatState): number[] {
  return messagesAdapter.getSelectors().selectAll(s.rooms[1]?.messages ?? messagesAdapter.getInitialState()).map((m) => m.seq);
}

describe('chat reducer', () => {
  it('merges history pages and live messages by seq, in order, with no duplicate', () => {
    let s = reducer(undefined, chatActions.loadOlder({ roomId: 1 }));
    expect(s.rooms[1]?.loadingOlder).toBe(true);
    s = reducer(s, live({ type: 'message', sender: 'b', message: msg(9) }));
    s = reducer(s, chatActions.historyLoaded({ roomId: 1, page: { items: [msg(9), msg(8), msg(7)], next: 7 } }));
    s = reducer(s, live({ type: 'message', sender: 'b', message: msg(10) }));
    s = reducer(s, live({ type: 'message', sender: 'b', message: msg(10) }));
    s = reducer(s, chatActions.historyLoaded({ roomId: 1, page: { items: [msg(6), msg(5)], next: null } }));
    expect(seqs(s)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(s.rooms[1]).toMatchObject({ olderCursor: null, loadingOlder: false });
  });

  it('applies edits and deletes to the message they name', () => {
    let s = reducer(undefined, live({ type: 'message', sender: 'b', message: msg(3, 'before') }));
    s = reducer(s, live({ type: 'edit', roomId: 1, seq: 4, targetSeq: 3, body: 'after', atMs: 44, senderId: 2 }));
    expect(s.rooms[1]?.messages.entities[3]).toMatchObject({ body: 'after', edited_at_ms: 44 });
    s = reducer(s, live({ type: 'delete', roomId: 1, seq: 5, targetSeq: 3, atMs: 55, senderId: 2 }));
    expect(s.rooms[1]?.messages.entities[3]).toMatchObject({ body: '', deleted_at_ms: 55, attachments: [] });
    expect(seqs(s)).toEqual([3]);
  });

  it('shows a sent message at its seq once acknowledged, and the live copy replaces it', () => {
    let s = reducer(undefined, chatActions.pendingAdded({ roomId: 1, nonce: 'n1', body: 'hey', attachments: [], sentAtMs: 1 }));
    s = reducer(s, chatActions.pendingAdded({ roomId: 1, nonce: 'n2', body: 'you', attachments: ['u1'], sentAtMs: 2 }));
    s = reducer(s, chatActions.sendFailed({ roomId: 1, nonce: 'n2', error: { code: 'rate_limited', message: 'slow down' } }));
    expect(s.rooms[1]?.pending.map((p) => [p.nonce, p.error?.code ?? null])).toEqual([['n1', null], ['n2', 'rate_limited']]);
    s = reducer(s, chatActions.sent({ roomId: 1, nonce: 'n1', seq: 12, messageId: 'x', senderId: 9, atMs: 3 }));
    expect(s.rooms[1]?.messages.entities[12]).toMatchObject({ body: 'hey', sender_id: 9 });
    s = reducer(s, live({ type: 'message', sender: 'me', message: { ...msg(12, 'hey', 9), created_at_ms: 2 } }));
    expect(s.rooms[1]?.messages.entities[12]).toMatchObject({ created_at_ms: 2, sender: 'me' });
    s = reducer(s, chatActions.discard({ roomId: 1, nonce: 'n2' }));
    expect(s.rooms[1]?.pending).toEqual([]);
  });

  it('shows who is typing for a while, and not once they post', () => {
    let s = reducer(undefined, live({ type: 'typing', roomId: 1, userId: 2, username: 'bob' }, 1000));
    s = reducer(s, live({ type: 'typing', roomId: 1, userId: 3, username: 'cy' }, 1000));
    expect(Object.keys(s.typing[1] ?? {})).toEqual(['2', '3']);
    s = reducer(s, live({ type: 'message', sender: 'bob', message: msg(1, 'x', 2) }));
    expect(Object.keys(s.typing[1] ?? {})).toEqual(['3']);
    const same = reducer(s, chatActions.typingExpired({ nowMs: 1000 + TYPING_SHOWN_MS - 1 }));
    expect(same).toBe(s);
    s = reducer(s, chatActions.typingExpired({ nowMs: 1000 + TYPING_SHOWN_MS }));
    expect(s.typing[1]).toEqual({});
  });

  it('forgets a room left', () => {
    let s = reducer(undefined, live({ type: 'message', sender: 'b', message: msg(1) }));
    s = reducer(s, roomsActions.left({ roomId: 1 }));
    expect(s.rooms[1]).toBeUndefined();
  });
});
