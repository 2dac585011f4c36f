import { createActionGroup, emptyProps, props } from '@ngrx/store';

import { AppError, Member, Message, Page, Room, RoomSummary, User } from '../core/api.types';
import { PresenceEntry, RoomEvent } from '../core/frames';
import { ConnectionState } from '../core/stomp.service';

export const authActions = createActionGroup({
  source: 'Auth',
  events: {
    'Login': props<{ username: string; password: string }>(),
    'Register': props<{ username: string; password: string; displayName: string }>(),
    'Signed In': props<{ user: User }>(),
    'Failed': props<{ error: AppError }>(),
    'Logout': emptyProps(),
    'Signed Out': emptyProps(),
    'Update Profile': props<{ displayName: string }>(),
    'Profile Updated': props<{ user: User }>(),
  },
});

export const roomsActions = createActionGroup({
  source: 'Rooms',
  events: {
    'Load': emptyProps(),
    'Loaded': props<{ rooms: RoomSummary[] }>(),
    'Failed': props<{ error: AppError }>(),
    'Added': props<{ room: RoomSummary }>(),
    'Create': props<{ name: string }>(),
    'Join': props<{ roomId: number }>(),
    'Open Dm': props<{ userId: number }>(),
    'Opened': props<{ room: Room }>(),
    'Leave': props<{ roomId: number }>(),
    'Left': props<{ roomId: number }>(),
    'Select': props<{ roomId: number | null }>(),
    'Members Loaded': props<{ roomId: number; members: Member[] }>(),
    'Peers Loaded': props<{ peers: Record<number, Member[]> }>(),
  },
});

export const chatActions = createActionGroup({
  source: 'Chat',
  events: {
    'Load Older': props<{ roomId: number }>(),
    'History Loaded': props<{ roomId: number; page: Page<Message> }>(),
    'History Failed': props<{ roomId: number; error: AppError }>(),
    /** A room's live item; `own`: sent by the signed-in user; `atMs`: when it arrived. */
    'Live': props<{ roomId: number; event: RoomEvent; own: boolean; atMs: number }>(),
    /** A message: its text, and the ids of its uploaded files (possibly with no text). */
    'Send': props<{ roomId: number; body: string; attachments: string[] }>(),
    'Edit': props<{ roomId: number; seq: number; body: string }>(),
    'Delete': props<{ roomId: number; seq: number }>(),
    'Pending Added': props<{ roomId: number; nonce: string; body: string; attachments: string[]; sentAtMs: number }>(),
    'Sent': props<{ roomId: number; nonce: string; seq: number; messageId: string; senderId: number; atMs: number }>(),
    'Send Failed': props<{ roomId: number; nonce: string; error: AppError }>(),
    'Retry': props<{ roomId: number; nonce: string }>(),
    'Discard': props<{ roomId: number; nonce: string }>(),
    'Edit Failed': props<{ roomId: number; error: AppError }>(),
    'Typing': props<{ roomId: number }>(),
    'Typing Expired': props<{ nowMs: number }>(),
    'Mark Read': props<{ roomId: number; seq: number }>(),
  },
});

export const liveActions = createActionGroup({
  source: 'Live',
  events: {
    'Connection': props<{ state: ConnectionState }>(),
    'Presence': props<{ users: PresenceEntry[] }>(),
  },
});

export const toastActions = createActionGroup({
  source: 'Toasts',
  events: {
    'Show': props<{ id: number; text: string; kind: 'error' | 'info' }>(),
    'Dismiss': props<{ id: number }>(),
  },
});
