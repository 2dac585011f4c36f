import { ChangeDetectionStrategy, Component, inject, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';
import { RouterLink } from '@angular/router';
import { Store } from '@ngrx/store';
import { Observable, last, mergeMap, tap } from 'rxjs';

import { ApiService } from '../core/api.service';
import { User } from '../core/api.types';
import { toAppError } from '../core/errors';
import { SessionService } from '../core/session.service';
import { UploadsService } from '../core/uploads.service';
import { authActions } from '../state/actions';
import { toast } from '../state/live.effects';
import { sessionFeature } from '../state/session.feature';
import { Avatar } from '../ui/avatar';

/** The caller's profile: the display name and the avatar others see. */
@Component({
  selector: 'bt-profile-page',
  imports: [FormsModule, RouterLink, Avatar],
  changeDetection: ChangeDetectionStrategy.OnPush,
  host: { class: 'flex min-h-0 flex-1 flex-col' },
  template: `
    <main id="main" class="flex-1 p-6">
      <a routerLink="/rooms" class="text-blue-800 underline md:hidden">← Rooms</a>
      <h1 class="mb-4 text-xl font-semibold">Your profile</h1>
      @if (me(); as u) {
        <div class="mb-6 flex items-center gap-4">
          <bt-avatar [userId]="u.id" [avatarRef]="u.avatar_ref" [name]="u.display_name" [size]="72" />
          <div class="flex flex-col gap-2">
            <p class="text-slate-700">Signed in as <strong>&#64;{{ u.username }}</strong></p>
            <div class="flex gap-2">
              <input #avatarPicker id="avatar-picker" type="file" accept="image/png,image/jpeg,image/gif,image/webp" class="hidden"
                (change)="setAvatar(avatarPicker.files); avatarPicker.value = ''" />
              <button type="button" (click)="avatarPicker.click()" [disabled]="uploading() !== null"
                class="rounded-md border border-slate-300 px-3 py-1 text-sm hover:bg-slate-50">Change picture</button>
              @if (u.avatar_ref) {
                <button type="button" (click)="removeAvatar()" class="rounded-md px-3 py-1 text-sm text-red-700 hover:bg-red-50">Remove</button>
              }
            </div>
            @if (uploading() !== null) {
              <progress class="h-1.5 w-48" [value]="uploading()" max="1" aria-label="Uploading the picture"></progress>
            }
          </div>
        </div>
      }
      <form (ngSubmit)="save()" class="flex max-w-sm flex-col gap-3">
        <label for="display-name" class="text-sm font-medium">Display name</label>
        <input id="display-name" name="displayName" [ngModel]="name()" (ngModelChange)="name.set($event)" maxlength="64" required
          class="rounded-md border border-slate-300 px-3 py-2" />
        @if (error(); as e) {
          <p role="alert" class="text-sm text-red-700">{{ e.message }}</p>
        }
        <button type="submit" [disabled]="busy()" class="rounded-md bg-blue-800 px-4 py-2 font-medium text-white disabled:opacity-60">Save</button>
      </form>
    </main>
  `,
})
export class ProfilePage {
  private readonly store = inject(Store);
  private readonly api = inject(ApiService);
  private readonly uploads = inject(UploadsService);
  private readonly session = inject(SessionService);
  protected readonly me = this.store.selectSignal(sessionFeature.selectUser);
  protected readonly busy = this.store.selectSignal(sessionFeature.selectBusy);
  protected readonly error = this.store.selectSignal(sessionFeature.selectError);
  protected readonly name = signal(this.me()?.display_name ?? '');
  /** The avatar upload's progress (0..1), or null when none is under way. */
  protected readonly uploading = signal<number | null>(null);

  protected save(): void {
    const displayName = this.name().trim();
    if (displayName) {
      this.store.dispatch(authActions.updateProfile({ displayName }));
    }
  }

  /** Uploads the picked image straight to the store, then makes it the avatar. */
  protected setAvatar(files: FileList | null): void {
    const file = files?.[0];
    if (!file) {
      return;
    }
    this.uploading.set(0);
    this.changed(
      this.uploads.uploadAvatar(file).pipe(
        tap((p) => this.uploading.set(p.state === 'done' ? 1 : p.fraction)),
        last(),
        mergeMap((p) => this.api.setAvatar(p.state === 'done' ? p.uploadId : '')),
      ),
    );
  }

  protected removeAvatar(): void {
    this.changed(this.api.removeAvatar());
  }

  private changed(call: Observable<User>): void {
    call.subscribe({
      next: (user) => {
        this.session.setUser(user);
        this.store.dispatch(authActions.profileUpdated({ user }));
        this.uploading.set(null);
      },
      error: (e: unknown) => {
        this.uploading.set(null);
        this.store.dispatch(toast(toAppError(e).message));
      },
    });
  }
}
