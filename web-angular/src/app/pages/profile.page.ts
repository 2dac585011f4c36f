import { ChangeDetectionStrategy, Component, inject, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';
import { RouterLink } from '@angular/router';
import { Store } from '@ngrx/store';

import { authActions } from '../state/actions';
import { sessionFeature } from '../state/session.feature';

/** The caller's profile: the display name others see. */
@Component({
  selector: 'bt-profile-page',
  imports: [FormsModule, RouterLink],
  changeDetection: ChangeDetectionStrategy.OnPush,
  host: { class: 'flex min-h-0 flex-1 flex-col' },
  template: `
    <main id="main" class="flex-1 p-6">
      <a routerLink="/rooms" class="text-blue-800 underline md:hidden">← Rooms</a>
      <h1 class="mb-4 text-xl font-semibold">Your profile</h1>
      <p class="mb-4 text-slate-700">Signed in as <strong>&#64;{{ me()?.username }}</strong></p>
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
  protected readonly me = this.store.selectSignal(sessionFeature.selectUser);
  protected readonly busy = this.store.selectSignal(sessionFeature.selectBusy);
  protected readonly error = this.store.selectSignal(sessionFeature.selectError);
  protected readonly name = signal(this.me()?.display_name ?? '');

  protected save(): void {
    const displayName = this.name().trim();
    if (displayName) {
      this.store.dispatch(authActions.updateProfile({ displayName }));
    }
  }
}
