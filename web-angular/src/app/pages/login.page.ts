import { ChangeDetectionStrategy, Component, computed, inject, signal } from '@angular/core';
import { NonNullableFormBuilder, ReactiveFormsModule, Validators } from '@angular/forms';
import { RouterLink } from '@angular/router';
import { Store } from '@ngrx/store';

import { Field, inputClass } from '../ui/field';
import { authActions } from '../state/actions';
import { sessionFeature } from '../state/session.feature';

/** Sign in: the server's refusal (wrong password, rate limits) is shown under the form. */
@Component({
  selector: 'bt-login-page',
  imports: [ReactiveFormsModule, RouterLink, Field],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <main id="main" class="flex min-h-full items-center justify-center p-4">
      <form
        [formGroup]="form"
        (ngSubmit)="submit()"
        class="flex w-full max-w-sm flex-col gap-4 rounded-xl bg-white p-6 shadow"
        aria-labelledby="login-title"
        novalidate
      >
        <h1 id="login-title" class="text-2xl font-semibold text-blue-900">Sign in to Banter</h1>
        <bt-field for="username" label="Username" [error]="fieldError('username')">
          <input id="username" formControlName="username" autocomplete="username" [class]="cls('username')"
            [attr.aria-invalid]="!!fieldError('username')" [attr.aria-describedby]="fieldError('username') ? 'username-error' : null" />
        </bt-field>
        <bt-field for="password" label="Password" [error]="fieldError('password')">
          <input id="password" type="password" formControlName="password" autocomplete="current-password"
            [class]="cls('password')" [attr.aria-invalid]="!!fieldError('password')"
            [attr.aria-describedby]="fieldError('password') ? 'password-error' : null" />
        </bt-field>
        @if (serverError(); as e) {
          <p role="alert" class="rounded-md bg-red-50 p-3 text-sm text-red-800">{{ e }}</p>
        }
        <button type="submit" [disabled]="busy()"
          class="rounded-md bg-blue-800 px-4 py-2 font-medium text-white hover:bg-blue-900 disabled:opacity-60">
          {{ busy() ? 'Signing in…' : 'Sign in' }}
        </button>
        <p class="text-sm text-slate-700">No account yet? <a routerLink="/register" class="font-medium text-blue-800 underline">Create one</a></p>
      </form>
    </main>
  `,
})
export class LoginPage {
  private readonly store = inject(Store);
  protected readonly form = inject(NonNullableFormBuilder).group({
    username: ['', [Validators.required]],
    password: ['', [Validators.required]],
  });
  protected readonly busy = this.store.selectSignal(sessionFeature.selectBusy);
  private readonly error = this.store.selectSignal(sessionFeature.selectError);
  protected readonly serverError = computed(() => {
    const e = this.error();
    if (!e || !this.submitted()) {
      return null;
    }
    if (e.code === 'invalid_credentials') {
      return 'That username and password do not match.';
    }
    return e.retryAfterSecs ? `${e.message} (try again in ${e.retryAfterSecs} s)` : e.message;
  });
  private readonly submitted = signal(false);

  protected fieldError(name: 'username' | 'password'): string | null {
    const c = this.form.controls[name];
    return (this.submitted() || c.touched) && c.hasError('required') ? `Enter your ${name}.` : null;
  }

  protected cls(name: 'username' | 'password'): string {
    return inputClass(!!this.fieldError(name));
  }

  protected submit(): void {
    this.submitted.set(true);
    this.form.markAllAsTouched();
    if (this.form.invalid) {
      return;
    }
    this.store.dispatch(authActions.login(this.form.getRawValue()));
  }
}
