import { ChangeDetectionStrategy, Component } from '@angular/core';

/** The right-hand side when no room is open. */
@Component({
  selector: 'bt-welcome-page',
  changeDetection: ChangeDetectionStrategy.OnPush,
  host: { class: 'flex min-h-0 flex-1 flex-col' },
  template: `
    <main id="main" class="flex flex-1 items-center justify-center p-8 text-center text-slate-600">
      <div>
        <h1 class="text-xl font-semibold text-slate-800">Welcome to Banter</h1>
        <p class="mt-2">Pick a room on the left, create one, or message someone.</p>
      </div>
    </main>
  `,
})
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a routed page with a template only
export class WelcomePage {}
