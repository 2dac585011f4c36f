import { HttpErrorResponse, HttpHeaders } from '@angular/common/http';

import { stompError, toAppError } from './errors';

describe('toAppError', () => {
  it('keeps the server code, message and Retry-After', () => {
    const err = new HttpErrorResponse({
      status: 429,
      headers: new HttpHeaders({ 'Retry-After': '12' }),
      error: { error: { code: 'rate_limited', message: 'too many attempts' } },
    });
    expect(toAppError(err)).toEqual({ code: 'rate_limited', message: 'too many attempts', retryAfterSecs: 12 });
  });

  it('names a lost network and a body that is not the JSON error', () => {
    expect(toAppError(new HttpErrorResponse({ status: 0 })).code).toBe('network');
    expect(toAppError(new HttpErrorResponse({ status: 502, statusText: 'Bad Gateway', error: '<html>' }))).toMatchObject({
      code: 'http_502',
      message: 'Bad Gateway',
    });
  });
});

describe('stompError', () => {
  it('splits a coded refusal and keeps a plain sentence whole', () => {
    expect(stompError('not_author: only the author edits a message')).toEqual({
      code: 'not_author',
      message: 'only the author edits a message',
    });
    expect(stompError('client too slow to read its messages')).toEqual({ code: 'stomp', message: 'client too slow to read its messages' });
  });
});
