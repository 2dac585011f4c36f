/** The REST API's objects, as docs/PROTOCOL.md describes them. */

export interface User {
  id: number;
  username: string;
  display_name: string;
  avatar_ref: string | null;
}

export interface Session {
  user: User;
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  expires_in: number;
}

export type RoomKind = 'group' | 'dm' | 'feed';

export interface Room {
  id: number;
  kind: RoomKind;
  name: string;
  created_by: number;
  created_at_ms: number;
}

export interface RoomSummary extends Room {
  role: string;
  last_seq: number;
  last_read_seq: number;
  unread: number;
  /** For a DM, the other member's user id. */
  dm_peer: number | null;
  last_activity_ms: number;
}

export interface Member {
  user_id: number;
  username: string;
  display_name: string;
  role: string;
  last_read_seq: number;
  online?: boolean;
  last_seen_ms?: number | null;
}

export interface Attachment {
  id: string;
  name: string;
  content_type: string;
  size: number;
  width?: number;
  height?: number;
  thumbnail?: string;
}

export interface Message {
  room_id: number;
  seq: number;
  message_id: string;
  sender_id: number;
  body: string;
  created_at_ms: number;
  attachments: Attachment[];
  content_type: string;
  edited_at_ms?: number | null;
  deleted_at_ms?: number | null;
}

export interface Page<T> {
  items: T[];
  next: number | null;
}

/** The body of every REST error. */
export interface ApiErrorBody {
  error: { code: string; message: string; trace_id?: string };
}

/** A REST or STOMP error as the app shows it: the server's stable code and its message. */
export interface AppError {
  code: string;
  message: string;
  retryAfterSecs?: number;
}

/** A form that posts one file straight to the blob store (docs/PROTOCOL.md "Uploads"). */
export interface UploadGrant {
  upload_id: string;
  method: 'POST';
  url: string;
  fields: { name: string; value: string }[];
  file_field: string;
  expires_at_ms: number;
  max_bytes: number;
}

/** A short-lived URL of a file. */
export interface SignedUrl {
  url: string;
  expires_at_ms: number;
}

/** An ingest source and its own feed room. */
export interface FeedSource {
  name: string;
  /** Its feed room, once the source created it. */
  room_id: number | null;
}
