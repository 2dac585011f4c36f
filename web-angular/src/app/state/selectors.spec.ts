import { Message, RoomSummary } from '../core/api.types';
import { chatActions, roomsActions } from './actions';
import { chatFeature } from './chat.feature';
import { roomsFeature } from './rooms.feature';

/** The app's state as the store holds it, made by its own reducers. */
function appState(setup: (r: typeof roomsFeature.reducer, c: typeof chatFeature.reducer) => {
  rooms: ReturnType<typeof roomsFeature.reducer>;
  chat: ReturnType<typeof chatFeature.reducer>;
}) {
  return setup(roomsFeature.reducer, chatFeature.reducer);
}

const summary = (id: number, over: Partial<RoomSummary> = {}): RoomSummary => ({
  id,
  kind: 'group',
  name: `room ${id}`,
  created_by: 1,
  created_at_ms: 0,
  role: 'member',
  last_seq: 0,
  last_read_seq: 0,
  unread: 0,
  dm_peer: null,
  last_activity_ms: id,
  ...over,
});

const msg = (roomId: number, seq: number): Message => ({
  room_id: roomId,
  seq,
  message_id: `m${seq}`,
  sender_id: 2,
  body: `m${seq}`,
  created_at_ms: seq,
  attachments: [],
  content_type: 'text/plain',
});

describe('selectors', () => {
  const state = appState((rooms, chat) => {
    let r = rooms(undefined, roomsActions.loaded({ rooms: [summary(1, { unread: 2 }), summary(2, { kind: 'dm', name: '', dm_peer: 9, unread: 3 })] }));
    r = rooms(r, roomsActions.membersLoaded({ roomId: 2, members: [{ user_id: 9, username: 'bob', display_name: 'Bob', role: 'member', last_read_seq: 0 }] }));
    r = rooms(r, roomsActions.select({ roomId: 2 }));
    let c = chat(undefined, chatActions.historyLoaded({ roomId: 2, page: { items: [msg(2, 5), msg(2, 4)], next: null } }));
    c = chat(c, chatActions.historyLoaded({ roomId: 1, page: { items: [msg(1, 9)], next: null } }));
    c = chat(c, chatActions.live({ roomId: 2, event: { type: 'typing', roomId: 2, userId: 9, username: 'bob' }, own: false, atMs: 0 }));
    c = chat(c, chatActions.live({ roomId: 1, event: { type: 'typing', roomId: 1, userId: 8, username: 'cy' }, own: false, atMs: 0 }));
    return { rooms: r, chat: c };
  });

  it('list the rooms by activity with their titles, and add up the unread', () => {
    expect(roomsFeature.selectRoomList(state).map((r) => [r.id, r.title])).toEqual([
      [2, 'Bob'],
      [1, 'room 1'],
    ]);
    expect(roomsFeature.selectTotalUnread(state)).toBe(5);
  });

  it('give the open room, its members, its messages in seq order and who types in it only', () => {
    expect(roomsFeature.selectSelectedRoom(state)?.id).toBe(2);
    expect(roomsFeature.selectSelectedMembers(state).map((m) => m.username)).toEqual(['bob']);
    expect(chatFeature.selectMessages(state).map((m) => m.seq)).toEqual([4, 5]);
    expect(chatFeature.selectTypingNames(state)).toEqual(['bob']);
    expect(chatFeature.selectPending(state)).toEqual([]);
  });
});
