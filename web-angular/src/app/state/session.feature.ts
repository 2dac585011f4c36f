import { createFeature, createReducer, on } from '@ngrx/store';

import { AppError, Member, User } from '../core/api.types';
import { ConnectionState } from '../core/stomp.service';
import { authActions, liveActions, roomsActions, toastActions } from './actions';

export interface Toast {
  id: number;
  text: string;
  kind: 'error' | 'info';
}

export interface SessionState {
  user: User | null;
  /** A login, registration or profile change is under way. */
  busy: boolean;
  error: AppError | null;
  connection: ConnectionState;
  /** Whether the live connection was up once since sign-in (the banner shows only after a loss). */
  wasConnected: boolean;
  presence: Record<number, { online: boolean; lastSeenMs: number | null }>;
  toasts: Toast[];
}

const initialState: SessionState = {
  user: null,
  busy: false,
  error: null,
  connection: 'disconnected',
  wasConnected: false,
  presence: {},
  toasts: [],
};

function withMembers(presence: SessionState['presence'], members: Member[]): SessionState['presence'] {
  const next = { ...presence };
  for (const m of members) {
    if (m.online !== undefined) {
      next[m.user_id] = { online: m.online, lastSeenMs: m.last_seen_ms ?? null };
    }
  }
  return next;
}

/** At most this many toasts are shown; older ones give way. */
export const MAX_TOASTS = 4;

export const sessionFeature = createFeature({
  name: 'session',
  reducer: createReducer(
    initialState,
    on(authActions.login, authActions.register, authActions.updateProfile, (state) => ({
      ...state,
      busy: true,
      error: null,
    })),
    on(authActions.signedIn, (state, { user }) => ({ ...state, user, busy: false, error: null })),
    on(authActions.profileUpdated, (state, { user }) => ({ ...state, user, busy: false })),
    on(authActions.failed, (state, { error }) => ({ ...state, busy: false, error })),
    on(authActions.signedOut, () => initialState),
    on(liveActions.connection, (state, { state: connection }) => ({
      ...state,
      connection,
      wasConnected: state.wasConnected || connection === 'connected',
    })),
    on(liveActions.presence, (state, { users }) => {
      const presence = { ...state.presence };
      for (const u of users) {
        presence[u.user_id] = { online: u.online, lastSeenMs: u.last_seen_ms };
      }
      return { ...state, presence };
    }),
    // Member lists carry each member's presence: it covers contacts the live events have not
    // named yet (a DM opened since connecting).
    on(roomsActions.membersLoaded, (state, { members }) => ({ ...state, presence: withMembers(state.presence, members) })),
    on(roomsActions.peersLoaded, (state, { peers }) => ({
      ...state,
      presence: withMembers(state.presence, Object.values(peers).flat()),
    })),
    on(toastActions.show, (state, { id, text, kind }) => ({
      ...state,
      toasts: [...state.toasts, { id, text, kind }].slice(-MAX_TOASTS),
    })),
    on(toastActions.dismiss, (state, { id }) => ({ ...state, toasts: state.toasts.filter((t) => t.id !== id) })),
  ),
});
