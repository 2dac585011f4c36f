import { StompHeaders } from '@stomp/stompjs';

import { Attachment, Message, RoomSummary } from './api.types';

/** What a room's subscription delivers, parsed from a MESSAGE frame's headers (docs/PROTOCOL.md). */
export type RoomEvent =
  | { type: 'message'; message: Message; sender: string }
  | { type: 'edit'; roomId: number; seq: number; targetSeq: number; body: string; atMs: number; senderId: number }
  | { type: 'delete'; roomId: number; seq: number; targetSeq: number; atMs: number; senderId: number }
  | { type: 'typing'; roomId: number; userId: number; username: string }
  | { type: 'read'; roomId: number; userId: number; seq: number };

/** What the caller's own queue (`/user/queue/events`) delivers. */
export type UserEvent =
  | { type: 'room.added'; room: RoomSummary }
  | { type: 'presence'; users: PresenceEntry[] };

export interface PresenceEntry {
  user_id: number;
  online: boolean;
  last_seen_ms: number | null;
}

function int(headers: StompHeaders, name: string): number {
  const raw = headers[name];
  const n = raw === undefined ? NaN : Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Error(`frame header '${name}' is not a non-negative integer: ${raw}`);
  }
  return n;
}

function optInt(headers: StompHeaders, name: string): number | null {
  return headers[name] === undefined ? null : int(headers, name);
}

function attachments(headers: StompHeaders): Attachment[] {
  const raw = headers['attachments'];
  if (!raw) {
    return [];
  }
  const parsed: unknown = JSON.parse(raw);
  return Array.isArray(parsed) ? (parsed as Attachment[]) : [];
}

/** Parses a room MESSAGE frame; null for an event kind this client does not know (newer servers). */
export function parseRoomFrame(headers: StompHeaders, body: string): RoomEvent | null {
  const roomId = int(headers, 'room-id');
  switch (headers['event']) {
    case 'message':
      return {
        type: 'message',
        sender: headers['sender'] ?? '',
        message: {
          room_id: roomId,
          seq: int(headers, 'seq'),
          message_id: headers['message-id'] ?? '',
          sender_id: int(headers, 'sender-id'),
          body,
          created_at_ms: int(headers, 'timestamp'),
          attachments: attachments(headers),
          content_type: headers['content-type'] ?? 'text/plain;charset=utf-8',
          edited_at_ms: optInt(headers, 'edited-at'),
          deleted_at_ms: optInt(headers, 'deleted-at'),
        },
      };
    case 'edit':
      return {
        type: 'edit',
        roomId,
        seq: int(headers, 'seq'),
        targetSeq: int(headers, 'target-seq'),
        body,
        atMs: int(headers, 'timestamp'),
        senderId: int(headers, 'sender-id'),
      };
    case 'delete':
      return {
        type: 'delete',
        roomId,
        seq: int(headers, 'seq'),
        targetSeq: int(headers, 'target-seq'),
        atMs: int(headers, 'timestamp'),
        senderId: int(headers, 'sender-id'),
      };
    case 'typing':
      return { type: 'typing', roomId, userId: int(headers, 'user-id'), username: headers['username'] ?? '' };
    case 'read':
      return { type: 'read', roomId, userId: int(headers, 'user-id'), seq: int(headers, 'seq') };
    default:
      return null;
  }
}

/** Parses a MESSAGE frame of the user's queue; null for an event kind this client does not know. */
export function parseUserFrame(headers: StompHeaders, body: string): UserEvent | null {
  switch (headers['event']) {
    case 'room.added':
      return { type: 'room.added', room: JSON.parse(body) as RoomSummary };
    case 'presence':
      return { type: 'presence', users: (JSON.parse(body) as { users: PresenceEntry[] }).users };
    default:
      return null;
  }
}

/** The seq a room frame advances the subscription's resume point to (typing frames have none). */
export function frameSeq(event: RoomEvent): number | null {
  switch (event.type) {
    case 'message':
      return event.message.seq;
    case 'edit':
    case 'delete':
      return event.seq;
    default:
      return null;
  }
}
