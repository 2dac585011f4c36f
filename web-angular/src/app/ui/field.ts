import { ChangeDetectionStrategy, Component, input } from '@angular/core';

/** A form field's label, control (projected) and error, tied together for screen readers. */
@Component({
  selector: 'bt-field',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <div class="flex flex-col gap-1">
      <label [attr.for]="for()" class="text-sm font-medium text-slate-700">{{ label() }}</label>
      <ng-content />
      @if (hint() && !error()) {
        <p [id]="for() + '-hint'" class="text-xs text-slate-600">{{ hint() }}</p>
      }
      @if (error()) {
        <p [id]="for() + '-error'" class="text-sm text-red-700" role="alert">{{ error() }}</p>
      }
    </div>
  `,
})
export class Field {
  readonly for = input.required<string>();
  readonly label = input.required<string>();
  readonly error = input<string | null>(null);
  readonly hint = input<string | null>(null);
}

/** The classes of a text input, red when it holds an error. */
export function inputClass(invalid: boolean): string {
  return (
    'w-full rounded-md border px-3 py-2 text-base shadow-sm focus:outline-none focus:ring-2 ' +
    (invalid ? 'border-red-600 focus:ring-red-500' : 'border-slate-300 focus:ring-blue-600')
  );
}
