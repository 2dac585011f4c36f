import {
  ChangeDetectionStrategy,
  Component,
  ElementRef,
  Injector,
  OnDestroy,
  afterNextRender,
  afterRenderEffect,
  computed,
  effect,
  inject,
  input,
  numberAttribute,
  signal,
  untracked,
  viewChild,
} from '@angular/core';
import { FormsModule } from '@angular/forms';
import { RouterLink } from '@angular/router';
import { Store } from '@ngrx/store';

import { UploadsService } from '../core/uploads.service';
import { toAppError } from '../core/errors';
import { chatActions, roomsActions } from '../state/actions';
import { toast } from '../state/live.effects';
import { Quake, toQuake } from '../core/quakes';
import { AttachmentView } from '../ui/attachment';
import { QuakeMap } from '../ui/quake-map';
import { ChatItem, chatFeature } from '../state/chat.feature';
import { roomTitle, roomsFeature } from '../state/rooms.feature';
import { sessionFeature } from '../state/session.feature';

/** How close to the top (px) the list must be scrolled to load older messages. */
const LOAD_OLDER_PX = 120;
/** How close to the bottom (px) counts as "at the newest": new messages then scroll into view. */
const STICK_PX = 80;

/** The text of a feed's GeoJSON message, as a line. */
export function featureLine(body: string): string {
  try {
    const f = JSON.parse(body) as { properties?: { magnitude?: number; magnitude_type?: string; region?: string; depth_km?: number } };
    const p = f.properties ?? {};
    return `M${p.magnitude ?? '?'}${p.magnitude_type ? ` (${p.magnitude_type})` : ''} · ${p.region ?? 'unknown region'} · ${p.depth_km ?? '?'} km deep`;
  } catch {
    return body;
  }
}

/** A file picked for the next message: uploading (with progress), uploaded, or refused. */
export interface DraftFile {
  key: number;
  name: string;
  fraction: number;
  uploadId: string | null;
  error: string | null;
}

/** At most this many files go with one message (the server's limit). */
export const MAX_FILES = 10;

/** One room: its messages (history scrolls back), who is typing, who read what, and the composer. */
@Component({
  selector: 'bt-chat-page',
  imports: [FormsModule, RouterLink, AttachmentView, QuakeMap],
  changeDetection: ChangeDetectionStrategy.OnPush,
  host: { class: 'flex min-h-0 flex-1 flex-col' },
  templateUrl: './chat.page.html',
})
export class ChatPage implements OnDestroy {
  private readonly store = inject(Store);
  private readonly uploads = inject(UploadsService);
  /** The room id, from the route. */
  readonly id = input.required({ transform: numberAttribute });

  protected readonly me = this.store.selectSignal(sessionFeature.selectUser);
  protected readonly room = this.store.selectSignal(roomsFeature.selectSelectedRoom);
  private readonly roomsLoaded = this.store.selectSignal(roomsFeature.selectLoaded);
  private readonly people = this.store.selectSignal(roomsFeature.selectPeople);
  protected readonly members = this.store.selectSignal(roomsFeature.selectSelectedMembers);
  protected readonly timeline = this.store.selectSignal(chatFeature.selectTimeline);
  protected readonly messages = this.store.selectSignal(chatFeature.selectMessages);
  protected readonly pending = this.store.selectSignal(chatFeature.selectPending);
  protected readonly typingNames = this.store.selectSignal(chatFeature.selectTypingNames);

  protected readonly draft = signal('');
  protected readonly files = signal<DraftFile[]>([]);
  protected readonly uploading = computed(() => this.files().some((f) => f.uploadId === null && f.error === null));
  private fileKeys = 0;
  protected readonly editing = signal<{ seq: number; text: string } | null>(null);
  protected readonly title = computed(() => {
    const r = this.room();
    return r ? roomTitle(r, this.people()) : '';
  });
  /** A room not in the caller's list: they may join it (a link someone shared). */
  protected readonly notMember = computed(() => this.roomsLoaded() && this.room() === null);
  protected readonly isFeed = computed(() => this.room()?.kind === 'feed');
  protected readonly isOwner = computed(() => this.room()?.role === 'owner');
  /** A feed room's earthquakes, newest first. */
  protected readonly quakes = computed<Quake[]>(() =>
    this.isFeed()
      ? this.messages()
          .map(toQuake)
          .filter((q): q is Quake => q !== null)
          .sort((a, b) => b.timeMs - a.timeMs || b.seq - a.seq)
      : [],
  );
  protected readonly chosen = signal<number | null>(null);
  protected readonly typingLine = computed(() => {
    const names = this.typingNames();
    if (names.length === 0) {
      return '';
    }
    return names.length === 1 ? `${names[0]} is typing…` : `${names.slice(0, 3).join(', ')} are typing…`;
  });
  /** Under the caller's newest message: who else read up to it. */
  protected readonly seenBy = computed(() => {
    const me = this.me();
    const mine = [...this.messages()].reverse().find((m) => m.sender_id === me?.id);
    if (!mine || !me) {
      return null;
    }
    const readers = this.members()
      .filter((m) => m.user_id !== me.id && m.last_read_seq >= mine.seq)
      .map((m) => m.display_name || m.username);
    return readers.length ? { seq: mine.seq, text: `Seen by ${readers.slice(0, 5).join(', ')}${readers.length > 5 ? ` and ${readers.length - 5} more` : ''}` } : null;
  });

  private readonly list = viewChild<ElementRef<HTMLElement>>('list');
  /** Set before older messages are added: the list's height then, to keep the view where it was. */
  private heightBeforeOlder: number | null = null;
  private atBottom = true;
  /** Messages arrived while the list was scrolled up: a button offers to jump to them. */
  protected readonly newBelow = signal(false);
  private readonly injector = inject(Injector);
  private lastSeq = 0;

  constructor() {
    effect(() => {
      const id = this.id();
      untracked(() => {
        this.atBottom = true;
        this.newBelow.set(false);
        this.lastSeq = 0;
        this.store.dispatch(roomsActions.select({ roomId: id }));
        // Keyboard users land in the composer of the room they open.
        afterNextRender(() => document.getElementById('composer')?.focus({ preventScroll: true }), {
          injector: this.injector,
        });
      });
    });
    afterRenderEffect(() => {
      const newest = this.messages().at(-1)?.seq ?? 0;
      this.pending();
      const el = this.list()?.nativeElement;
      if (!el) {
        return;
      }
      const arrived = newest > this.lastSeq && this.lastSeq > 0;
      this.lastSeq = Math.max(this.lastSeq, newest);
      if (this.heightBeforeOlder !== null) {
        el.scrollTop += el.scrollHeight - this.heightBeforeOlder;
        this.heightBeforeOlder = null;
      } else if (this.atBottom) {
        el.scrollTop = el.scrollHeight;
      } else if (arrived) {
        this.newBelow.set(true);
      }
    });
  }

  ngOnDestroy(): void {
    this.store.dispatch(roomsActions.select({ roomId: null }));
  }

  protected onScroll(): void {
    const el = this.list()?.nativeElement;
    if (!el) {
      return;
    }
    this.atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX;
    if (this.atBottom) {
      this.newBelow.set(false);
    }
    if (el.scrollTop < LOAD_OLDER_PX) {
      this.loadOlder();
    }
  }

  protected jumpToNewest(): void {
    const el = this.list()?.nativeElement;
    if (el) {
      el.scrollTop = el.scrollHeight;
    }
    this.atBottom = true;
    this.newBelow.set(false);
  }

  protected loadOlder(): void {
    const t = this.timeline();
    if (t && t.olderCursor !== null && !t.loadingOlder) {
      this.heightBeforeOlder = this.list()?.nativeElement.scrollHeight ?? null;
      this.store.dispatch(chatActions.loadOlder({ roomId: this.id() }));
    }
  }

  protected onKeydown(e: KeyboardEvent): void {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.send();
    }
  }

  protected onInput(value: string): void {
    this.draft.set(value);
    if (value) {
      this.store.dispatch(chatActions.typing({ roomId: this.id() }));
    }
  }

  protected send(): void {
    const body = this.draft().trim();
    const attachments = this.files().flatMap((f) => (f.uploadId ? [f.uploadId] : []));
    if ((!body && attachments.length === 0) || this.uploading()) {
      return;
    }
    this.atBottom = true;
    this.store.dispatch(chatActions.send({ roomId: this.id(), body, attachments }));
    this.draft.set('');
    this.files.set([]);
  }

  /** Starts uploading the files picked (or dropped, or pasted) for the next message. */
  protected attach(list: FileList | null): void {
    const picked = Array.from(list ?? []).slice(0, Math.max(0, MAX_FILES - this.files().length));
    for (const file of picked) {
      const key = ++this.fileKeys;
      this.files.update((fs) => [...fs, { key, name: file.name, fraction: 0, uploadId: null, error: null }]);
      const set = (change: Partial<DraftFile>) =>
        this.files.update((fs) => fs.map((f) => (f.key === key ? { ...f, ...change } : f)));
      this.uploads.upload(this.id(), file).subscribe({
        next: (p) => set(p.state === 'done' ? { fraction: 1, uploadId: p.uploadId } : { fraction: p.fraction }),
        error: (e: unknown) => {
          const err = toAppError(e);
          set({ error: err.message });
          this.store.dispatch(toast(`${file.name}: ${err.message}`));
        },
      });
    }
  }

  protected removeFile(key: number): void {
    this.files.update((fs) => fs.filter((f) => f.key !== key));
  }

  protected startEdit(m: ChatItem): void {
    this.editing.set({ seq: m.seq, text: m.body });
  }

  protected saveEdit(): void {
    const e = this.editing();
    if (e && e.text.trim()) {
      this.store.dispatch(chatActions.edit({ roomId: this.id(), seq: e.seq, body: e.text.trim() }));
    }
    this.editing.set(null);
  }

  protected remove(m: ChatItem): void {
    if (confirm('Delete this message for everyone?')) {
      this.store.dispatch(chatActions.delete({ roomId: this.id(), seq: m.seq }));
    }
  }

  protected retry(nonce: string): void {
    this.store.dispatch(chatActions.retry({ roomId: this.id(), nonce }));
  }

  protected discard(nonce: string): void {
    this.store.dispatch(chatActions.discard({ roomId: this.id(), nonce }));
  }

  protected join(): void {
    this.store.dispatch(roomsActions.join({ roomId: this.id() }));
  }

  protected leave(): void {
    if (confirm('Leave this room?')) {
      this.store.dispatch(roomsActions.leave({ roomId: this.id() }));
    }
  }

  protected senderName(m: ChatItem): string {
    if (m.sender) {
      return m.sender;
    }
    const p = this.people()[m.sender_id];
    return p ? p.display_name || p.username : `user ${m.sender_id}`;
  }

  protected isGeo(m: ChatItem): boolean {
    return m.content_type.startsWith('application/geo+json');
  }

  protected geoLine(m: ChatItem): string {
    return featureLine(m.body);
  }

  /** Chooses a quake (from the map or the list): both show it. */
  protected chooseQuake(seq: number, fromMap: boolean): void {
    this.chosen.set(seq);
    if (fromMap) {
      document.getElementById(`quake-${seq}`)?.scrollIntoView({ block: 'nearest' });
    }
  }

  protected time(ms: number): string {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
}
