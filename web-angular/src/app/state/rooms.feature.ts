import { EntityAdapter, EntityState, createEntityAdapter } from '@ngrx/entity';
import { createFeature, createReducer, createSelector, on } from '@ngrx/store';

import { Member, RoomSummary } from '../core/api.types';
import { authActions, chatActions, roomsActions } from './actions';

/** The newest message of a room as its list entry shows it. */
export interface Preview {
  seq: number;
  sender: string;
  text: string;
}

export interface RoomEntry extends RoomSummary {
  preview: Preview | null;
}

export interface RoomsState extends EntityState<RoomEntry> {
  loaded: boolean;
  selectedId: number | null;
  /** Each room's members once its view opened it (names, roles, read markers). */
  members: Record<number, Member[]>;
  /** Names of the people met in members lists (DM peers among them), by user id. */
  people: Record<number, Person>;
}

export interface Person {
  username: string;
  display_name: string;
}

function withPeople(people: Record<number, Person>, members: Member[]): Record<number, Person> {
  const next = { ...people };
  for (const m of members) {
    next[m.user_id] = { username: m.username, display_name: m.display_name };
  }
  return next;
}

/** The room list's order: newest activity first, then the higher id. */
export function byActivity(a: RoomEntry, b: RoomEntry): number {
  return b.last_activity_ms - a.last_activity_ms || b.id - a.id;
}

export const roomsAdapter: EntityAdapter<RoomEntry> = createEntityAdapter<RoomEntry>({ sortComparer: byActivity });

const initialState: RoomsState = roomsAdapter.getInitialState({ loaded: false, selectedId: null, members: {}, people: {} });

function previewText(body: string, contentType: string, attachments: number): string {
  if (contentType.startsWith('application/geo+json')) {
    try {
      const feature = JSON.parse(body) as { properties?: { magnitude?: number; region?: string } };
      return `M${feature.properties?.magnitude ?? '?'} ${feature.properties?.region ?? ''}`.trim();
    } catch {
      return 'an event';
    }
  }
  if (!body && attachments > 0) {
    return attachments === 1 ? 'an attachment' : `${attachments} attachments`;
  }
  return body;
}

function toEntry(room: RoomSummary, old?: RoomEntry): RoomEntry {
  return { ...room, preview: old?.preview ?? null };
}

export const roomsFeature = createFeature({
  name: 'rooms',
  reducer: createReducer(
    initialState,
    on(roomsActions.loaded, (state, { rooms }) =>
      roomsAdapter.setAll(
        rooms.map((r) => toEntry(r, state.entities[r.id])),
        { ...state, loaded: true },
      ),
    ),
    on(roomsActions.added, (state, { room }) => roomsAdapter.upsertOne(toEntry(room, state.entities[room.id]), state)),
    on(roomsActions.left, (state, { roomId }) =>
      roomsAdapter.removeOne(roomId, { ...state, selectedId: state.selectedId === roomId ? null : state.selectedId }),
    ),
    on(roomsActions.select, (state, { roomId }) => ({ ...state, selectedId: roomId })),
    on(roomsActions.membersLoaded, (state, { roomId, members }) => ({
      ...state,
      members: { ...state.members, [roomId]: members },
      people: withPeople(state.people, members),
    })),
    on(roomsActions.peersLoaded, (state, { peers }) => ({
      ...state,
      people: withPeople(state.people, Object.values(peers).flat()),
    })),
    on(chatActions.live, (state, { roomId, event, own }) => {
      const room = state.entities[roomId];
      if (!room) {
        return state;
      }
      switch (event.type) {
        case 'message': {
          const m = event.message;
          const newest = m.seq > room.last_seq;
          const changes: Partial<RoomEntry> = {
            last_seq: Math.max(room.last_seq, m.seq),
            last_activity_ms: Math.max(room.last_activity_ms, m.created_at_ms),
          };
          if (newest || !room.preview || m.seq >= room.preview.seq) {
            changes.preview = {
              seq: m.seq,
              sender: event.sender,
              text: m.deleted_at_ms ? 'message deleted' : previewText(m.body, m.content_type, m.attachments.length),
            };
          }
          if (newest && !own && m.seq > room.last_read_seq) {
            changes.unread = room.unread + 1;
          }
          if (own && m.seq > room.last_read_seq) {
            // Sending reads the room up to one's own message.
            changes.last_read_seq = m.seq;
            changes.unread = 0;
          }
          return roomsAdapter.updateOne({ id: roomId, changes }, state);
        }
        case 'edit':
        case 'delete': {
          const changes: Partial<RoomEntry> = { last_seq: Math.max(room.last_seq, event.seq) };
          if (room.preview?.seq === event.targetSeq) {
            changes.preview = {
              ...room.preview,
              text: event.type === 'delete' ? 'message deleted' : previewText(event.body, 'text/plain', 0),
            };
          }
          return roomsAdapter.updateOne({ id: roomId, changes }, state);
        }
        case 'read': {
          const members = state.members[roomId]?.map((mb) =>
            mb.user_id === event.userId ? { ...mb, last_read_seq: Math.max(mb.last_read_seq, event.seq) } : mb,
          );
          const next = members ? { ...state, members: { ...state.members, [roomId]: members } } : state;
          if (!own || event.seq <= room.last_read_seq) {
            return next;
          }
          return roomsAdapter.updateOne(
            {
              id: roomId,
              changes: { last_read_seq: event.seq, unread: event.seq >= room.last_seq ? 0 : room.unread },
            },
            next,
          );
        }
        default:
          return state;
      }
    }),
    on(chatActions.markRead, (state, { roomId, seq }) => {
      const room = state.entities[roomId];
      if (!room || seq <= room.last_read_seq) {
        return state;
      }
      return roomsAdapter.updateOne(
        { id: roomId, changes: { last_read_seq: seq, unread: seq >= room.last_seq ? 0 : room.unread } },
        state,
      );
    }),
    on(authActions.signedOut, () => initialState),
  ),
  extraSelectors: ({ selectRoomsState, selectSelectedId, selectMembers, selectPeople }) => {
    const { selectAll, selectEntities } = roomsAdapter.getSelectors(selectRoomsState);
    return {
      selectAllRooms: selectAll,
      selectRoomEntities: selectEntities,
      selectSelectedRoom: createSelector(selectEntities, selectSelectedId, (rooms, id) =>
        id === null ? null : (rooms[id] ?? null),
      ),
      selectSelectedMembers: createSelector(selectMembers, selectSelectedId, (members, id) =>
        id === null ? [] : (members[id] ?? []),
      ),
      /** The rooms as the list shows them: a DM under its peer's name. */
      selectRoomList: createSelector(selectAll, selectPeople, (rooms, people) =>
        rooms.map((r) => ({ ...r, title: roomTitle(r, people) })),
      ),
      selectTotalUnread: createSelector(selectAll, (rooms) => rooms.reduce((n, r) => n + r.unread, 0)),
    };
  },
});

/** What a room is called on screen: its name, or for a DM the peer's display name. */
export function roomTitle(room: RoomEntry, people: Record<number, Person>): string {
  if (room.kind === 'dm') {
    const peer = room.dm_peer === null ? undefined : people[room.dm_peer];
    return peer ? peer.display_name || peer.username : 'Direct message';
  }
  return room.name;
}
