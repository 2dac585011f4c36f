import { HttpErrorResponse } from '@angular/common/http';
import { Injectable, Signal, computed, inject, signal } from '@angular/core';
import { firstValueFrom } from 'rxjs';

import { ApiService } from './api.service';
import { Session, User } from './api.types';

/** A session as kept in the browser: the server's answer and when its access token expires. */
export interface StoredSession {
  user: User;
  accessToken: string;
  refreshToken: string;
  /** ms since the epoch, by this browser's clock. */
  expiresAtMs: number;
}

export const SESSION_KEY = 'banter.session';
/** Refresh this long before the access token expires, so no request goes out with a dying token. */
const REFRESH_MARGIN_MS = 30_000;

export function toStored(session: Session, nowMs: number): StoredSession {
  return {
    user: session.user,
    accessToken: session.access_token,
    refreshToken: session.refresh_token,
    expiresAtMs: nowMs + session.expires_in * 1000,
  };
}

function readStored(storage: Storage): StoredSession | null {
  try {
    const raw = storage.getItem(SESSION_KEY);
    if (!raw) {
      return null;
    }
    const parsed = JSON.parse(raw) as Partial<StoredSession>;
    if (
      typeof parsed.accessToken === 'string' &&
      typeof parsed.refreshToken === 'string' &&
      typeof parsed.expiresAtMs === 'number' &&
      parsed.user
    ) {
      return parsed as StoredSession;
    }
  } catch {
    // A corrupt entry is as good as none.
  }
  return null;
}

/**
 * The signed-in session and its tokens. The access token is refreshed before it expires, one refresh
 * at a time across all of the browser's tabs (the server's refresh tokens are single-use: two tabs
 * refreshing with the same one would revoke the session), and tabs pick up each other's tokens.
 */
@Injectable({ providedIn: 'root' })
export class SessionService {
  private readonly api = inject(ApiService);
  private readonly storage: Storage = localStorage;
  private readonly current = signal<StoredSession | null>(readStored(this.storage));
  private inflight: Promise<string | null> | null = null;

  readonly session: Signal<StoredSession | null> = this.current.asReadonly();
  readonly user = computed(() => this.current()?.user ?? null);

  constructor() {
    addEventListener('storage', (e: StorageEvent) => {
      if (e.key === SESSION_KEY) {
        this.current.set(readStored(this.storage));
      }
    });
  }

  /** Starts the session the server answered a login or registration with. */
  start(session: Session): void {
    this.save(toStored(session, Date.now()));
  }

  /** Ends the session in this browser (the caller tells the server). */
  clear(): void {
    this.storage.removeItem(SESSION_KEY);
    this.current.set(null);
  }

  setUser(user: User): void {
    const s = this.current();
    if (s) {
      this.save({ ...s, user });
    }
  }

  /** A valid access token, refreshed first when it is about to expire; null when signed out. */
  async accessToken(): Promise<string | null> {
    const s = this.current();
    if (!s) {
      return null;
    }
    if (s.expiresAtMs - REFRESH_MARGIN_MS > Date.now()) {
      return s.accessToken;
    }
    return this.refresh();
  }

  /**
   * Refreshes the tokens now (after a 401, or when they are about to expire). Resolves to the new
   * access token, or null when the server ended the session (then the session is cleared).
   * A network failure rejects and keeps the session: its refresh token is still good.
   */
  refresh(): Promise<string | null> {
    this.inflight ??= this.refreshAcrossTabs().finally(() => (this.inflight = null));
    return this.inflight;
  }

  private async refreshAcrossTabs(): Promise<string | null> {
    const run = () => this.refreshOnce();
    if (typeof navigator !== 'undefined' && navigator.locks) {
      return navigator.locks.request('banter.refresh', run);
    }
    return run();
  }

  private async refreshOnce(): Promise<string | null> {
    const before = this.current();
    // Another tab may have refreshed while this one waited for the lock.
    const stored = readStored(this.storage);
    if (stored && stored.expiresAtMs - REFRESH_MARGIN_MS > Date.now() && stored.accessToken !== before?.accessToken) {
      this.current.set(stored);
      return stored.accessToken;
    }
    const s = stored ?? before;
    if (!s) {
      return null;
    }
    try {
      const fresh = await firstValueFrom(this.api.refresh(s.refreshToken));
      this.save(toStored(fresh, Date.now()));
      return fresh.access_token;
    } catch (err) {
      if (err instanceof HttpErrorResponse && err.status === 401) {
        this.clear();
        return null;
      }
      throw err;
    }
  }

  private save(s: StoredSession): void {
    this.storage.setItem(SESSION_KEY, JSON.stringify(s));
    this.current.set(s);
  }
}
