import { ChangeDetectionStrategy, Component, computed, inject, signal } from '@angular/core';
import { toSignal } from '@angular/core/rxjs-interop';
import { FormsModule } from '@angular/forms';
import { NavigationEnd, Router, RouterLink, RouterLinkActive, RouterOutlet } from '@angular/router';
import { Store } from '@ngrx/store';
import { Subject, catchError, debounceTime, distinctUntilChanged, filter, map, of, switchMap } from 'rxjs';

import { ApiService } from '../core/api.service';
import { FeedSource, User } from '../core/api.types';
import { authActions, roomsActions } from '../state/actions';
import { roomsFeature } from '../state/rooms.feature';
import { sessionFeature } from '../state/session.feature';
import { Avatar } from '../ui/avatar';

/** The signed-in frame: the room list (with new room and direct message), the user's menu, and the open page. */
@Component({
  selector: 'bt-shell-page',
  imports: [RouterOutlet, RouterLink, RouterLinkActive, FormsModule, Avatar],
  changeDetection: ChangeDetectionStrategy.OnPush,
  templateUrl: './shell.page.html',
})
export class ShellPage {
  private readonly store = inject(Store);
  private readonly api = inject(ApiService);
  private readonly router = inject(Router);

  protected readonly me = this.store.selectSignal(sessionFeature.selectUser);
  protected readonly rooms = this.store.selectSignal(roomsFeature.selectRoomList);
  protected readonly loaded = this.store.selectSignal(roomsFeature.selectLoaded);
  private readonly presence = this.store.selectSignal(sessionFeature.selectPresence);
  protected readonly newRoomName = signal('');
  protected readonly search = signal('');
  private readonly searches = new Subject<string>();
  protected readonly found = toSignal(
    this.searches.pipe(
      map((s) => s.trim().toLowerCase()),
      debounceTime(250),
      distinctUntilChanged(),
      switchMap((prefix) => (prefix ? this.api.searchUsers(prefix).pipe(catchError(() => of([] as User[]))) : of([] as User[]))),
    ),
    { initialValue: [] as User[] },
  );
  /** On a phone, the list gives way to the open room. */
  private readonly url = toSignal(
    this.router.events.pipe(
      filter((e) => e instanceof NavigationEnd),
      map(() => this.router.url),
    ),
    { initialValue: this.router.url },
  );
  private readonly feeds = toSignal(this.api.feeds().pipe(catchError(() => of([] as FeedSource[]))), {
    initialValue: [] as FeedSource[],
  });
  /** Feeds whose room the caller is not in yet. */
  protected readonly feedsToJoin = computed(() => {
    const mine = new Set(this.rooms().map((r) => r.id));
    return this.feeds().filter((f): f is FeedSource & { room_id: number } => f.room_id !== null && !mine.has(f.room_id));
  });
  protected readonly roomOpen = computed(() => /^\/(rooms\/\d+|profile)/.test(this.url()));

  protected online(userId: number | null): boolean {
    return userId !== null && this.presence()[userId]?.online === true;
  }

  protected onSearch(value: string): void {
    this.search.set(value);
    this.searches.next(value);
  }

  protected createRoom(): void {
    const name = this.newRoomName().trim();
    if (name) {
      this.store.dispatch(roomsActions.create({ name }));
      this.newRoomName.set('');
    }
  }

  protected openDm(user: User): void {
    this.store.dispatch(roomsActions.openDm({ userId: user.id }));
    this.onSearch('');
  }

  protected joinFeed(f: { room_id: number }): void {
    this.store.dispatch(roomsActions.join({ roomId: f.room_id }));
  }

  protected logout(): void {
    this.store.dispatch(authActions.logout());
  }
}
