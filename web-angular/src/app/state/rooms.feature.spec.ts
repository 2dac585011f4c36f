import { RoomSummary } from '../core/api.types';
import { RoomEvent } from '../core/frames';
import { authActions, chatActions, roomsActions } from './actions';
import { roomTitle, roomsFeature } from './rooms.feature';

const { reducer } = roomsFeature;

function summary(id: number, over: Partial<RoomSummary> = {}): RoomSummary {
  return {
    id,
    kind: 'group',
    name: `room ${id}`,
    created_by: 1,
    created_at_ms: 1000,
    role: 'member',
    last_seq: 10,
    last_read_seq: 10,
    unread: 0,
    dm_peer: null,
    last_activity_ms: 1000 + id,
    ...over,
  };
}

function message(roomId: number, seq: number, senderId: number, body = 'hi'): RoomEvent {
  return {
    type: 'message',
    sender: `user${senderId}`,
    message: { room_id: roomId, seq, message_id: `m${seq}`, sender_id: senderId, body, created_at_ms: 5000 + seq, attachments: [], content_type: 'text/plain' },
  };
}

function state(...rooms: RoomSummary[]) {
  return reducer(undefined, roomsActions.loaded({ rooms }));
}

describe('rooms reducer', () => {
  it('lists rooms newest activity first', () => {
    const s = state(summary(1), summary(2), summary(3, { last_activity_ms: 1 }));
    expect(s.ids).toEqual([2, 1, 3]);
    expect(s.loaded).toBe(true);
  });

  it('counts others’ new messages as unread, moves the room up and shows the newest as its preview', () => {
    let s = state(summary(1), summary(2));
    s = reducer(s, chatActions.live({ roomId: 1, event: message(1, 11, 7, 'hello'), own: false, atMs: 0 }));
    expect(s.entities[1]).toMatchObject({ unread: 1, last_seq: 11, preview: { seq: 11, sender: 'user7', text: 'hello' } });
    expect(s.ids[0]).toBe(1);
    // The same message again (a resume's replay) counts nothing twice.
    s = reducer(s, chatActions.live({ roomId: 1, event: message(1, 11, 7, 'hello'), own: false, atMs: 0 }));
    expect(s.entities[1]?.unread).toBe(1);
  });

  it('the replay of the newest known message fills the preview without counting it', () => {
    const s = reducer(state(summary(1)), chatActions.live({ roomId: 1, event: message(1, 10, 7, 'last'), own: false, atMs: 0 }));
    expect(s.entities[1]).toMatchObject({ unread: 0, preview: { text: 'last' } });
  });

  it('one’s own message and read marker clear the unread count', () => {
    let s = state(summary(1, { unread: 3, last_read_seq: 7 }));
    s = reducer(s, chatActions.live({ roomId: 1, event: { type: 'read', roomId: 1, userId: 9, seq: 10 }, own: true, atMs: 0 }));
    expect(s.entities[1]?.unread).toBe(0);
    s = reducer(s, chatActions.live({ roomId: 1, event: message(1, 11, 7), own: false, atMs: 0 }));
    s = reducer(s, chatActions.live({ roomId: 1, event: message(1, 12, 9), own: true, atMs: 0 }));
    expect(s.entities[1]).toMatchObject({ unread: 0, last_read_seq: 12 });
  });

  it('an edit or delete of the previewed message changes the preview', () => {
    let s = reducer(state(summary(1)), chatActions.live({ roomId: 1, event: message(1, 10, 7, 'old'), own: false, atMs: 0 }));
    s = reducer(s, chatActions.live({ roomId: 1, event: { type: 'edit', roomId: 1, seq: 11, targetSeq: 10, body: 'new', atMs: 1, senderId: 7 }, own: false, atMs: 0 }));
    expect(s.entities[1]?.preview?.text).toBe('new');
    s = reducer(s, chatActions.live({ roomId: 1, event: { type: 'delete', roomId: 1, seq: 12, targetSeq: 10, atMs: 1, senderId: 7 }, own: false, atMs: 0 }));
    expect(s.entities[1]?.preview?.text).toBe('message deleted');
  });

  it('a DM is titled by its peer once the peer’s name is known', () => {
    let s = state(summary(4, { kind: 'dm', name: '', dm_peer: 8 }));
    const room = s.entities[4];
    expect(room && roomTitle(room, s.people)).toBe('Direct message');
    s = reducer(s, roomsActions.peersLoaded({ peers: { 4: [{ user_id: 8, username: 'bob', display_name: 'Bob B', role: 'member', last_read_seq: 0 }] } }));
    expect(room && roomTitle(room, s.people)).toBe('Bob B');
  });

  it('leaving removes the room and signing out forgets everything', () => {
    let s = reducer(state(summary(1), summary(2)), roomsActions.select({ roomId: 2 }));
    s = reducer(s, roomsActions.left({ roomId: 2 }));
    expect(s.ids).toEqual([1]);
    expect(s.selectedId).toBeNull();
    s = reducer(s, authActions.signedOut());
    expect(s.ids).toEqual([]);
    expect(s.loaded).toBe(false);
  });
});
