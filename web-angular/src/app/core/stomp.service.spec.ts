import { TestBed } from '@angular/core/testing';
import { IStompSocket, StompSocketState } from '@stomp/stompjs';
import { firstValueFrom, take, toArray } from 'rxjs';

import { RoomEvent } from './frames';
import { SessionService } from './session.service';
import { StompService } from './stomp.service';

/** A WebSocket the test plays the server's side of: it sees the frames sent and sends frames back. */
class ScriptedSocket implements IStompSocket {
  url = 'ws://test/ws';
  binaryType = 'arraybuffer' as const;
  readyState: number = StompSocketState.CONNECTING;
  onopen: ((ev?: unknown) => unknown) | null = null;
  onclose: ((ev?: unknown) => unknown) | null = null;
  onerror: ((ev: unknown) => unknown) | null = null;
  onmessage: ((ev: { data: string }) => unknown) | null = null;
  readonly sent: string[] = [];

  constructor() {
    setTimeout(() => {
      this.readyState = StompSocketState.OPEN;
      this.onopen?.();
    });
  }

  send(data: string): void {
    this.sent.push(data);
    // As the server does: a DISCONNECT with a receipt is answered, then the socket closes.
    const receipt = /^DISCONNECT\n(?:.*\n)*?receipt:(.*)\n/.exec(data)?.[1];
    if (receipt !== undefined) {
      setTimeout(() => {
        this.frame('RECEIPT', { 'receipt-id': receipt });
        this.drop();
      });
    }
  }

  close(): void {
    this.drop();
  }

  drop(): void {
    if (this.readyState === StompSocketState.CLOSED) {
      return;
    }
    this.readyState = StompSocketState.CLOSED;
    this.onclose?.({ code: 1006, reason: 'gone', wasClean: false });
  }

  frame(command: string, headers: Record<string, string>, body = ''): void {
    const head = Object.entries(headers).map(([k, v]) => `${k}:${v}`).join('\n');
    this.onmessage?.({ data: `${command}\n${head}\n\n${body}\0` });
  }

  /** The frames the client sent with this command, as header maps (and body). */
  frames(command: string): { headers: Record<string, string>; body: string }[] {
    return this.sent
      .filter((f) => f.startsWith(`${command}\n`))
      .map((f) => {
        const [head = '', body = ''] = f.split('\n\n');
        const headers = Object.fromEntries(head.split('\n').slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
        return { headers, body: body.replace(/\0$/, '') };
      });
  }
}

function messageHeaders(sub: string, seq: number): Record<string, string> {
  return {
    subscription: sub,
    destination: '/rooms/5',
    'message-id': `m${seq}`,
    event: 'message',
    seq: String(seq),
    'room-id': '5',
    'sender-id': '2',
    sender: 'bob',
    timestamp: '1000',
  };
}

describe('StompService', () => {
  let sockets: ScriptedSocket[];
  let service: StompService;

  async function connected(socket: ScriptedSocket): Promise<void> {
    await vi.waitFor(() => expect(socket.frames('CONNECT')).toHaveLength(1));
    socket.frame('CONNECTED', { version: '1.2', 'heart-beat': '0,0' });
  }

  beforeEach(() => {
    sockets = [];
    TestBed.configureTestingModule({
      providers: [{ provide: SessionService, useValue: { accessToken: () => Promise.resolve('token-1') } }],
    });
    service = TestBed.inject(StompService);
    service.start(() => {
      const s = new ScriptedSocket();
      sockets.push(s);
      return s;
    });
  });

  afterEach(async () => {
    await service.stop();
  });

  it('connects with the access token', async () => {
    await vi.waitFor(() => expect(sockets[0]?.frames('CONNECT')).toHaveLength(1));
    expect(sockets[0]?.frames('CONNECT')[0]?.headers['authorization']).toBe('Bearer token-1');
  });

  it('resubscribes after a lost connection from the last seq delivered, with no gap and no duplicate', async () => {
    let since = 3;
    const events: Promise<RoomEvent[]> = firstValueFrom(service.room(5, () => since).pipe(take(3), toArray()));
    const first = sockets[0] as ScriptedSocket;
    await connected(first);
    await vi.waitFor(() => expect(first.frames('SUBSCRIBE')).toHaveLength(1));
    const sub = first.frames('SUBSCRIBE')[0]?.headers;
    expect(sub).toMatchObject({ destination: '/rooms/5', since: '3' });
    first.frame('MESSAGE', messageHeaders(sub?.['id'] ?? '', 4), 'four');
    since = 4;
    first.drop();

    await vi.waitFor(() => expect(sockets).toHaveLength(2), { timeout: 5000 });
    const second = sockets[1] as ScriptedSocket;
    await connected(second);
    await vi.waitFor(() => expect(second.frames('SUBSCRIBE')).toHaveLength(1));
    const again = second.frames('SUBSCRIBE')[0]?.headers;
    expect(again?.['since']).toBe('4');
    second.frame('MESSAGE', messageHeaders(again?.['id'] ?? '', 5), 'five');
    second.frame('MESSAGE', { ...messageHeaders(again?.['id'] ?? '', 6), event: 'typing', 'user-id': '2', username: 'bob' });
    const got = await events;
    expect(got.map((e) => (e.type === 'message' ? e.message.body : e.type))).toEqual(['four', 'five', 'typing']);
  });

  it('resolves a SEND on its RECEIPT and rejects it on an ERROR naming it', async () => {
    const socket = sockets[0] as ScriptedSocket;
    await connected(socket);
    const ok = service.send({ roomId: 5, body: 'hi', nonce: 'n-1' });
    const refused = service.send({ roomId: 5, body: '', nonce: 'n-2', event: 'delete', targetSeq: 3 });
    await vi.waitFor(() => expect(socket.frames('SEND')).toHaveLength(2));
    const [a, b] = socket.frames('SEND');
    expect(a?.headers).toMatchObject({ destination: '/rooms/5', nonce: 'n-1' });
    expect(b?.headers).toMatchObject({ event: 'delete', 'target-seq': '3', nonce: 'n-2' });
    socket.frame('RECEIPT', { 'receipt-id': a?.headers['receipt'] ?? '', seq: '9', 'message-id': 'abc' });
    socket.frame('ERROR', { 'receipt-id': b?.headers['receipt'] ?? '', message: 'not_allowed: only the author or an owner deletes' });
    await expect(ok).resolves.toEqual({ seq: 9, messageId: 'abc' });
    await expect(refused).rejects.toEqual({ code: 'not_allowed', message: 'only the author or an owner deletes' });
  });

  it('sends again, with the same nonce, a message whose connection dropped before its RECEIPT', async () => {
    const first = sockets[0] as ScriptedSocket;
    await connected(first);
    const sent = service.send({ roomId: 5, body: 'once', nonce: 'n-9' });
    await vi.waitFor(() => expect(first.frames('SEND')).toHaveLength(1));
    first.drop();
    await vi.waitFor(() => expect(sockets).toHaveLength(2), { timeout: 5000 });
    const second = sockets[1] as ScriptedSocket;
    await connected(second);
    await vi.waitFor(() => expect(second.frames('SEND')).toHaveLength(1));
    const resent = second.frames('SEND')[0];
    expect(resent?.headers['nonce']).toBe('n-9');
    expect(resent?.body).toBe('once');
    second.frame('RECEIPT', { 'receipt-id': resent?.headers['receipt'] ?? '', seq: '10', 'message-id': 'm' });
    await expect(sent).resolves.toEqual({ seq: 10, messageId: 'm' });
  });
});
