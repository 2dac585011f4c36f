import { Injectable, inject } from '@angular/core';
import { RxStomp, RxStompState } from '@stomp/rx-stomp';
import { IFrame, IStompSocket, ReconnectionTimeMode, StompHeaders } from '@stomp/stompjs';
import { Observable, Subject, map, mergeMap, of } from 'rxjs';

import { AppError } from './api.types';
import { stompError } from './errors';
import { RoomEvent, UserEvent, parseRoomFrame, parseUserFrame } from './frames';
import { SessionService } from './session.service';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

/** What the room's RECEIPT carries: the seq and id the message (or event) got. */
export interface SendReceipt {
  seq: number;
  messageId: string;
}

/** A SEND to a room: a message, or an edit or delete of one. */
export interface Outgoing {
  roomId: number;
  body: string;
  /** The idempotency key: a resend after a lost connection is answered with the first RECEIPT. */
  nonce: string;
  event?: 'edit' | 'delete';
  targetSeq?: number;
  attachments?: string[];
}

interface Pending {
  headers: StompHeaders;
  destination: string;
  body: string;
  resolve: (r: SendReceipt) => void;
  reject: (e: AppError) => void;
}

export function websocketUrl(loc: Location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws`;
}

/**
 * The one STOMP connection of the app, over the node's `/ws` (docs/PROTOCOL.md): it connects with a
 * fresh access token each time, reconnects with backoff, resubscribes each room with `since` = the
 * last seq it delivered (so a reconnect leaves no gap and repeats nothing), and resends every SEND
 * not yet acknowledged with its nonce (so a lost connection loses no message and doubles none).
 */
@Injectable({ providedIn: 'root' })
export class StompService {
  private readonly session = inject(SessionService);
  private readonly rx: RxStomp = new RxStomp();
  private readonly pending = new Map<string, Pending>();
  private readonly errorsSubject = new Subject<AppError>();
  private receipts = 0;

  /** ERROR frames not tied to a SEND (a dropped session says why). */
  readonly errors$: Observable<AppError> = this.errorsSubject.asObservable();

  readonly state$: Observable<ConnectionState> = this.rx.connectionState$.pipe(
    map((s) => {
      switch (s) {
        case RxStompState.OPEN:
          return 'connected';
        case RxStompState.CONNECTING:
          return 'connecting';
        default:
          return 'disconnected';
      }
    }),
  );

  constructor() {
    this.rx.unhandledReceipts$.subscribe((frame) => this.onReceipt(frame));
    this.rx.stompErrors$.subscribe((frame) => this.onError(frame));
    this.rx.connected$.subscribe(() => this.resendPending());
  }

  /**
   * Connects (and keeps reconnecting) as the signed-in user, to the node that served the page
   * (or through `socket`, which unit tests script).
   */
  start(socket?: () => IStompSocket): void {
    if (this.rx.active) {
      return;
    }
    this.rx.configure({
      ...(socket ? { webSocketFactory: socket } : { brokerURL: websocketUrl(location) }),
      heartbeatIncoming: 10_000,
      heartbeatOutgoing: 10_000,
      reconnectDelay: 500,
      maxReconnectDelay: 15_000,
      reconnectTimeMode: ReconnectionTimeMode.EXPONENTIAL,
      connectionTimeout: 10_000,
      beforeConnect: async (client: RxStomp) => {
        let token: string | null = null;
        try {
          token = await this.session.accessToken();
        } catch {
          // The refresh failed on the network: the connect fails too, and is retried.
        }
        if (!token) {
          // Signed out: stop rather than knock with no token.
          void client.deactivate();
          return;
        }
        client.configure({ connectHeaders: { host: location.hostname, authorization: `Bearer ${token}` } });
      },
    });
    this.rx.activate();
  }

  /** Disconnects for good (sign-out); unacknowledged SENDs fail. */
  async stop(): Promise<void> {
    for (const [id, p] of this.pending) {
      p.reject({ code: 'signed_out', message: 'signed out before the message was stored' });
      this.pending.delete(id);
    }
    await this.rx.deactivate();
  }

  /**
   * The live items of a room: on each (re)subscription `since()` names the last seq already held,
   * and the server replays everything after it before going live.
   */
  room(roomId: number, since: () => number): Observable<RoomEvent> {
    return this.rx
      .watch({ destination: `/rooms/${roomId}`, subHeaders: () => ({ since: String(since()) }) })
      .pipe(mergeMap((m) => this.parse(() => parseRoomFrame(m.headers, m.body))));
  }

  /** The caller's own events: rooms added, contacts' presence. */
  userEvents(): Observable<UserEvent> {
    return this.rx
      .watch({ destination: '/user/queue/events' })
      .pipe(mergeMap((m) => this.parse(() => parseUserFrame(m.headers, m.body))));
  }

  /** Sends and resolves once the server says the item is durable (its RECEIPT), or rejects. */
  send(out: Outgoing): Promise<SendReceipt> {
    const receipt = `r${++this.receipts}-${out.nonce}`;
    const headers: StompHeaders = { receipt, nonce: out.nonce };
    if (out.event) {
      headers['event'] = out.event;
      headers['target-seq'] = String(out.targetSeq ?? 0);
    }
    if (out.attachments?.length) {
      headers['attachments'] = out.attachments.join(',');
    }
    return new Promise<SendReceipt>((resolve, reject) => {
      const p: Pending = { headers, destination: `/rooms/${out.roomId}`, body: out.body, resolve, reject };
      this.pending.set(receipt, p);
      if (this.rx.connected()) {
        this.publish(p);
      }
      // Otherwise the next connect sends it.
    });
  }

  /** "I am typing" (dropped while disconnected: it would be stale). */
  typing(roomId: number): void {
    if (this.rx.connected()) {
      this.rx.publish({ destination: `/rooms/${roomId}/typing`, body: '', retryIfDisconnected: false });
    }
  }

  /** Raises the caller's read marker in a room. */
  read(roomId: number, seq: number): void {
    if (this.rx.connected()) {
      this.rx.publish({
        destination: `/rooms/${roomId}/read`,
        headers: { seq: String(seq) },
        body: '',
        retryIfDisconnected: false,
      });
    }
  }

  private publish(p: Pending): void {
    this.rx.publish({ destination: p.destination, headers: p.headers, body: p.body, retryIfDisconnected: false });
  }

  private resendPending(): void {
    for (const p of this.pending.values()) {
      this.publish(p);
    }
  }

  private onReceipt(frame: IFrame): void {
    const id = frame.headers['receipt-id'];
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined) {
      return;
    }
    this.pending.delete(id);
    p.resolve({ seq: Number(frame.headers['seq']), messageId: frame.headers['message-id'] ?? '' });
  }

  private onError(frame: IFrame): void {
    const message = frame.headers['message'] ?? frame.body;
    const id = frame.headers['receipt-id'];
    const p = id === undefined ? undefined : this.pending.get(id);
    if (p && id !== undefined) {
      if (message.startsWith('outcome unknown:')) {
        // Maybe stored: it stays pending, and the resend with its nonce (on the next connect, or
        // now if this one lives on) gets the first one's RECEIPT or stores it.
        setTimeout(() => this.rx.connected() && this.pending.has(id) && this.publish(p), 1000);
        return;
      }
      this.pending.delete(id);
      p.reject(stompError(message));
      return;
    }
    this.errorsSubject.next(stompError(message));
  }

  private parse<T>(f: () => T | null): Observable<T> {
    try {
      const v = f();
      return v === null ? of() : of(v);
    } catch (e) {
      this.errorsSubject.next({ code: 'bad_frame', message: e instanceof Error ? e.message : String(e) });
      return of();
    }
  }
}
