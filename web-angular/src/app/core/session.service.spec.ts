import { HttpErrorResponse } from '@angular/common/http';
import { TestBed } from '@angular/core/testing';
import { Observable, Subject, throwError } from 'rxjs';

import { ApiService } from './api.service';
import { Session } from './api.types';
import { SESSION_KEY, SessionService } from './session.service';

function session(n: number, expiresIn = 900): Session {
  return {
    user: { id: 1, username: 'alice', display_name: 'Alice', avatar_ref: null },
    access_token: `access-${n}`,
    refresh_token: `refresh-${n}`,
    token_type: 'Bearer',
    expires_in: expiresIn,
  };
}

describe('SessionService', () => {
  let refreshes: { token: string; answer: Subject<Session> }[];
  let refresh: (token: string) => Observable<Session>;

  beforeEach(() => {
    localStorage.clear();
    refreshes = [];
    refresh = (token) => {
      const answer = new Subject<Session>();
      refreshes.push({ token, answer });
      return answer;
    };
    TestBed.configureTestingModule({
      providers: [{ provide: ApiService, useValue: { refresh: (t: string) => refresh(t) } }],
    });
  });

  it('keeps the session across reloads and hands out a token that is not about to expire', async () => {
    TestBed.inject(SessionService).start(session(1));
    expect(JSON.parse(localStorage.getItem(SESSION_KEY) ?? '{}').refreshToken).toBe('refresh-1');
    const again = TestBed.runInInjectionContext(() => new SessionService());
    expect(await again.accessToken()).toBe('access-1');
    expect(refreshes).toEqual([]);
  });

  it('refreshes a token about to expire once, however many callers ask at the same time', async () => {
    const s = TestBed.inject(SessionService);
    s.start(session(1, 10));
    const a = s.accessToken();
    const b = s.accessToken();
    await vi.waitFor(() => expect(refreshes).toHaveLength(1));
    expect(refreshes[0]?.token).toBe('refresh-1');
    refreshes[0]?.answer.next(session(2));
    refreshes[0]?.answer.complete();
    expect(await a).toBe('access-2');
    expect(await b).toBe('access-2');
    expect(s.session()?.refreshToken).toBe('refresh-2');
    expect(await s.accessToken()).toBe('access-2');
    expect(refreshes).toHaveLength(1);
  });

  it('ends the session when the server refuses the refresh, and keeps it when the network failed', async () => {
    const s = TestBed.inject(SessionService);
    s.start(session(1, 10));
    refresh = () => throwError(() => new HttpErrorResponse({ status: 0 }));
    await expect(s.accessToken()).rejects.toBeInstanceOf(HttpErrorResponse);
    expect(s.session()?.refreshToken).toBe('refresh-1');
    refresh = () => throwError(() => new HttpErrorResponse({ status: 401 }));
    expect(await s.accessToken()).toBeNull();
    expect(s.session()).toBeNull();
    expect(localStorage.getItem(SESSION_KEY)).toBeNull();
  });
});
