import { ChangeDetectionStrategy, Component, inject } from '@angular/core';
import { RouterOutlet } from '@angular/router';
import { Store } from '@ngrx/store';

import { toastActions } from './state/actions';
import { sessionFeature } from './state/session.feature';

/** The page frame: the routed page, the server's errors as toasts, and the connection banner. */
@Component({
  selector: 'bt-root',
  imports: [RouterOutlet],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <a href="#main" class="sr-only-focusable rounded bg-white px-3 py-2 shadow">Skip to content</a>
    @if (lost()) {
      <div role="status" class="fixed inset-x-0 top-0 z-40 bg-amber-100 px-4 py-2 text-center text-sm text-amber-950">
        Connection lost. Reconnecting… Messages you send now go out once it is back.
      </div>
    }
    <router-outlet />
    <div aria-live="assertive" class="fixed bottom-4 right-4 z-50 flex w-80 max-w-[calc(100vw-2rem)] flex-col gap-2">
      @for (t of toasts(); track t.id) {
        <div
          role="alert"
          class="flex items-start gap-2 rounded-lg px-4 py-3 text-sm shadow-lg"
          [class]="t.kind === 'error' ? 'bg-red-700 text-white' : 'bg-slate-800 text-white'"
        >
          <span class="flex-1">{{ t.text }}</span>
          <button type="button" class="font-bold" (click)="dismiss(t.id)" aria-label="Dismiss">×</button>
        </div>
      }
    </div>
  `,
})
export class App {
  private readonly store = inject(Store);
  protected readonly toasts = this.store.selectSignal(sessionFeature.selectToasts);
  private readonly connection = this.store.selectSignal(sessionFeature.selectConnection);
  private readonly wasConnected = this.store.selectSignal(sessionFeature.selectWasConnected);
  private readonly user = this.store.selectSignal(sessionFeature.selectUser);

  protected lost(): boolean {
    return this.user() !== null && this.wasConnected() && this.connection() !== 'connected';
  }

  protected dismiss(id: number): void {
    this.store.dispatch(toastActions.dismiss({ id }));
  }
}
