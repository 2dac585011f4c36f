import { ChangeDetectionStrategy, Component, computed, inject, signal } from '@angular/core';
import { takeUntilDestroyed, toSignal } from '@angular/core/rxjs-interop';
import { NonNullableFormBuilder, ReactiveFormsModule, Validators } from '@angular/forms';
import { RouterLink } from '@angular/router';
import { Store } from '@ngrx/store';
import { catchError, debounceTime, distinctUntilChanged, map, of, startWith, switchMap } from 'rxjs';

import { ApiService } from '../core/api.service';
import { authActions } from '../state/actions';
import { sessionFeature } from '../state/session.feature';
import { Field, inputClass } from '../ui/field';

/** The server's username rule (docs/PROTOCOL.md "Rules"), checked here first to answer as one types. */
export function usernameProblem(name: string): string | null {
  if (name.length < 3 || name.length > 32) {
    return 'A username has 3 to 32 characters.';
  }
  if (!/^[a-z]/.test(name)) {
    return 'A username starts with a letter (a–z).';
  }
  if (!/^[a-z][a-z0-9_.]*$/.test(name)) {
    return 'Use only lowercase letters, digits, _ and .';
  }
  if (name.startsWith('feed.')) {
    return 'Usernames starting with "feed." are kept for feeds.';
  }
  return null;
}

type Availability = { state: 'idle' | 'checking' } | { state: 'free' } | { state: 'taken'; reason: string };

/** Sign up, with the username checked against the server as it is typed. */
@Component({
  selector: 'bt-register-page',
  imports: [ReactiveFormsModule, RouterLink, Field],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <main id="main" class="flex min-h-full items-center justify-center p-4">
      <form [formGroup]="form" (ngSubmit)="submit()" novalidate aria-labelledby="register-title"
        class="flex w-full max-w-sm flex-col gap-4 rounded-xl bg-white p-6 shadow">
        <h1 id="register-title" class="text-2xl font-semibold text-blue-900">Create your Banter account</h1>
        <bt-field for="username" label="Username" [error]="usernameError()" [hint]="usernameHint()">
          <input id="username" formControlName="username" autocomplete="username" autocapitalize="none" spellcheck="false"
            [class]="cls(!!usernameError())" [attr.aria-invalid]="!!usernameError()"
            [attr.aria-describedby]="usernameError() ? 'username-error' : 'username-hint'" />
        </bt-field>
        <bt-field for="display_name" label="Display name (optional)" [error]="null">
          <input id="display_name" formControlName="displayName" autocomplete="name" maxlength="64" [class]="cls(false)" />
        </bt-field>
        <bt-field for="password" label="Password" [error]="passwordError()" hint="8 to 128 characters.">
          <input id="password" type="password" formControlName="password" autocomplete="new-password"
            [class]="cls(!!passwordError())" [attr.aria-invalid]="!!passwordError()"
            [attr.aria-describedby]="passwordError() ? 'password-error' : 'password-hint'" />
        </bt-field>
        @if (serverError(); as e) {
          <p role="alert" class="rounded-md bg-red-50 p-3 text-sm text-red-800">{{ e }}</p>
        }
        <button type="submit" [disabled]="busy()"
          class="rounded-md bg-blue-800 px-4 py-2 font-medium text-white hover:bg-blue-900 disabled:opacity-60">
          {{ busy() ? 'Creating…' : 'Create account' }}
        </button>
        <p class="text-sm text-slate-700">Have an account? <a routerLink="/login" class="font-medium text-blue-800 underline">Sign in</a></p>
      </form>
    </main>
  `,
})
export class RegisterPage {
  private readonly store = inject(Store);
  private readonly api = inject(ApiService);
  protected readonly form = inject(NonNullableFormBuilder).group({
    username: ['', [Validators.required]],
    displayName: [''],
    password: ['', [Validators.required, Validators.minLength(8), Validators.maxLength(128)]],
  });
  protected readonly busy = this.store.selectSignal(sessionFeature.selectBusy);
  private readonly error = this.store.selectSignal(sessionFeature.selectError);
  private readonly submitted = signal(false);
  private readonly username = toSignal(this.form.controls.username.valueChanges.pipe(startWith('')), {
    initialValue: '',
  });
  private readonly password = toSignal(this.form.controls.password.valueChanges.pipe(startWith('')), {
    initialValue: '',
  });
  protected readonly availability = signal<Availability>({ state: 'idle' });

  protected readonly usernameError = computed(() => {
    const name = this.username().trim().toLowerCase();
    if (!name) {
      return this.submitted() ? 'Choose a username.' : null;
    }
    const a = this.availability();
    const local = usernameProblem(name);
    if (local) {
      return local;
    }
    if (a.state === 'taken') {
      return a.reason;
    }
    const e = this.error();
    return this.submitted() && e?.code === 'username_taken' ? e.message : null;
  });

  protected readonly usernameHint = computed(() => {
    switch (this.availability().state) {
      case 'checking':
        return 'Checking…';
      case 'free':
        return 'This username is free.';
      default:
        return '3–32 characters: a–z, 0–9, _ and ., starting with a letter.';
    }
  });

  protected readonly passwordError = computed(() => {
    const p = this.password();
    if (!p) {
      return this.submitted() ? 'Choose a password.' : null;
    }
    return p.length < 8 ? 'At least 8 characters.' : p.length > 128 ? 'At most 128 characters.' : null;
  });

  protected readonly serverError = computed(() => {
    const e = this.error();
    if (!e || !this.submitted() || e.code === 'username_taken') {
      return null;
    }
    return e.retryAfterSecs ? `${e.message} (try again in ${e.retryAfterSecs} s)` : e.message;
  });

  constructor() {
    this.form.controls.username.valueChanges
      .pipe(
        map((v) => v.trim().toLowerCase()),
        debounceTime(300),
        distinctUntilChanged(),
        switchMap((name) => {
          if (usernameProblem(name)) {
            return of<Availability>({ state: 'idle' });
          }
          this.availability.set({ state: 'checking' });
          return this.api.usernameAvailable(name).pipe(
            map((r): Availability => (r.available ? { state: 'free' } : { state: 'taken', reason: r.reason ?? 'This username is taken.' })),
            catchError(() => of<Availability>({ state: 'idle' })),
          );
        }),
        takeUntilDestroyed(),
      )
      .subscribe((a) => this.availability.set(a));
  }

  protected cls(invalid: boolean): string {
    return inputClass(invalid);
  }

  protected submit(): void {
    this.submitted.set(true);
    this.form.markAllAsTouched();
    if (this.form.invalid || this.usernameError() || this.passwordError()) {
      return;
    }
    const v = this.form.getRawValue();
    this.store.dispatch(
      authActions.register({ username: v.username.trim().toLowerCase(), password: v.password, displayName: v.displayName }),
    );
  }
}
