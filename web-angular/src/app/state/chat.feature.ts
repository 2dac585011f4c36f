import { EntityAdapter, EntityState, createEntityAdapter } from '@ngrx/entity';
import { createFeature, createReducer, createSelector, on } from '@ngrx/store';

import { AppError, Message } from '../core/api.types';
import { authActions, chatActions, roomsActions } from './actions';
import { roomsFeature } from './rooms.feature';

/** A message of the chat view, with the sender's name when a frame told it. */
export interface ChatItem extends Message {
  sender?: string;
}

/** A message sent from this browser and not yet acknowledged (or refused). */
export interface PendingItem {
  nonce: string;
  body: string;
  /** Upload ids. */
  attachments: string[];
  sentAtMs: number;
  error: AppError | null;
}

export interface RoomTimeline {
  messages: EntityState<ChatItem>;
  /**
   * Where history goes on: the `before` of the next older page; null once the first message is
   * loaded; undefined before the first page.
   */
  olderCursor: number | null | undefined;
  loadingOlder: boolean;
  pending: PendingItem[];
}

export interface ChatState {
  rooms: Record<number, RoomTimeline>;
  /** Who is typing where, until when (ms). */
  typing: Record<number, Record<number, { username: string; untilMs: number }>>;
}

export const messagesAdapter: EntityAdapter<ChatItem> = createEntityAdapter<ChatItem>({
  selectId: (m) => m.seq,
  sortComparer: (a, b) => a.seq - b.seq,
});

export const TYPING_SHOWN_MS = 4000;

const emptyTimeline: RoomTimeline = {
  messages: messagesAdapter.getInitialState(),
  olderCursor: undefined,
  loadingOlder: false,
  pending: [],
};

const initialState: ChatState = { rooms: {}, typing: {} };

function withRoom(state: ChatState, roomId: number, f: (t: RoomTimeline) => RoomTimeline): ChatState {
  return { ...state, rooms: { ...state.rooms, [roomId]: f(state.rooms[roomId] ?? emptyTimeline) } };
}

function withoutTyping(state: ChatState, roomId: number, userId: number): ChatState['typing'] {
  const room = state.typing[roomId];
  if (!room?.[userId]) {
    return state.typing;
  }
  const rest = Object.fromEntries(Object.entries(room).filter(([id]) => Number(id) !== userId));
  return { ...state.typing, [roomId]: rest };
}

/** Applies one live item of a room to its timeline: messages are kept by seq, so a replay adds nothing twice. */
function applyLive(t: RoomTimeline, event: Parameters<typeof chatActions.live>[0]['event']): RoomTimeline {
  switch (event.type) {
    case 'message': {
      const item: ChatItem = { ...event.message, sender: event.sender };
      return { ...t, messages: messagesAdapter.upsertOne(item, t.messages) };
    }
    case 'edit': {
      const target = t.messages.entities[event.targetSeq];
      if (!target) {
        return t;
      }
      return {
        ...t,
        messages: messagesAdapter.updateOne(
          { id: event.targetSeq, changes: { body: event.body, edited_at_ms: event.atMs } },
          t.messages,
        ),
      };
    }
    case 'delete': {
      if (!t.messages.entities[event.targetSeq]) {
        return t;
      }
      return {
        ...t,
        messages: messagesAdapter.updateOne(
          { id: event.targetSeq, changes: { body: '', attachments: [], deleted_at_ms: event.atMs } },
          t.messages,
        ),
      };
    }
    default:
      return t;
  }
}

export const chatFeature = createFeature({
  name: 'chat',
  reducer: createReducer(
    initialState,
    on(chatActions.loadOlder, (state, { roomId }) => withRoom(state, roomId, (t) => ({ ...t, loadingOlder: true }))),
    on(chatActions.historyLoaded, (state, { roomId, page }) =>
      withRoom(state, roomId, (t) => ({
        ...t,
        // A message held from the live stream may be newer than the page's copy (an edit after
        // the page was read): keep it.
        messages: messagesAdapter.addMany(page.items, t.messages),
        olderCursor: page.next,
        loadingOlder: false,
      })),
    ),
    on(chatActions.historyFailed, (state, { roomId }) =>
      withRoom(state, roomId, (t) => ({ ...t, loadingOlder: false })),
    ),
    on(chatActions.live, (state, { roomId, event, atMs }) => {
      if (event.type === 'typing') {
        const room = { ...(state.typing[roomId] ?? {}) };
        room[event.userId] = { username: event.username, untilMs: atMs + TYPING_SHOWN_MS };
        return { ...state, typing: { ...state.typing, [roomId]: room } };
      }
      const next = withRoom(state, roomId, (t) => applyLive(t, event));
      // Whoever posts has stopped typing.
      return event.type === 'message' ? { ...next, typing: withoutTyping(next, roomId, event.message.sender_id) } : next;
    }),
    on(chatActions.typingExpired, (state, { nowMs }) => {
      let changed = false;
      const typing: ChatState['typing'] = {};
      for (const [room, users] of Object.entries(state.typing)) {
        const kept = Object.fromEntries(Object.entries(users).filter(([, u]) => u.untilMs > nowMs));
        changed ||= Object.keys(kept).length !== Object.keys(users).length;
        typing[Number(room)] = kept;
      }
      return changed ? { ...state, typing } : state;
    }),
    on(chatActions.pendingAdded, (state, { roomId, nonce, body, attachments, sentAtMs }) =>
      withRoom(state, roomId, (t) => ({
        ...t,
        pending: [...t.pending, { nonce, body, attachments, sentAtMs, error: null }],
      })),
    ),
    on(chatActions.sent, (state, { roomId, nonce, seq, messageId, senderId, atMs }) =>
      withRoom(state, roomId, (t) => {
        const p = t.pending.find((x) => x.nonce === nonce);
        const pending = t.pending.filter((x) => x.nonce !== nonce);
        if (!p || t.messages.entities[seq] || p.attachments.length > 0) {
          // A message with files waits for its live copy, which describes them.
          return { ...t, pending };
        }
        // Shown at its seq at once; the live frame that follows replaces it with the server's copy.
        const item: ChatItem = {
          room_id: roomId,
          seq,
          message_id: messageId,
          sender_id: senderId,
          body: p.body,
          created_at_ms: atMs,
          attachments: [],
          content_type: 'text/plain;charset=utf-8',
        };
        return { ...t, pending, messages: messagesAdapter.addOne(item, t.messages) };
      }),
    ),
    on(chatActions.sendFailed, (state, { roomId, nonce, error }) =>
      withRoom(state, roomId, (t) => ({
        ...t,
        pending: t.pending.map((p) => (p.nonce === nonce ? { ...p, error } : p)),
      })),
    ),
    on(chatActions.discard, (state, { roomId, nonce }) =>
      withRoom(state, roomId, (t) => ({ ...t, pending: t.pending.filter((p) => p.nonce !== nonce) })),
    ),
    on(roomsActions.left, (state, { roomId }) => {
      const rooms = Object.fromEntries(Object.entries(state.rooms).filter(([id]) => Number(id) !== roomId));
      return { ...state, rooms };
    }),
    on(authActions.signedOut, () => initialState),
  ),
  extraSelectors: ({ selectRooms, selectTyping }) => {
    const selectTimeline = createSelector(
      selectRooms,
      roomsFeature.selectSelectedId,
      (rooms, id) => (id === null ? null : (rooms[id] ?? emptyTimeline)),
    );
    const { selectAll } = messagesAdapter.getSelectors();
    return {
      selectTimeline,
      selectMessages: createSelector(selectTimeline, (t) => (t ? selectAll(t.messages) : [])),
      selectPending: createSelector(selectTimeline, (t) => t?.pending ?? []),
      selectTypingNames: createSelector(selectTyping, roomsFeature.selectSelectedId, (typing, id) =>
        id === null ? [] : Object.values(typing[id] ?? {}).map((u) => u.username),
      ),
    };
  },
});
