import { ChangeDetectionStrategy, Component, computed, inject, input } from '@angular/core';
import { toObservable, toSignal } from '@angular/core/rxjs-interop';
import { catchError, of, switchMap } from 'rxjs';

import { UploadsService } from '../core/uploads.service';

/**
 * A user's picture: their avatar (through a short-lived signed URL, cached under its ref) or,
 * without one, their initial. Decorative: the name is always written next to it.
 */
@Component({
  selector: 'bt-avatar',
  changeDetection: ChangeDetectionStrategy.OnPush,
  host: { class: 'inline-flex shrink-0' },
  template: `
    @if (url()) {
      <img [src]="url()" alt="" [width]="size()" [height]="size()" class="rounded-full object-cover"
        [style.width.px]="size()" [style.height.px]="size()" />
    } @else {
      <span aria-hidden="true" class="flex items-center justify-center rounded-full bg-blue-100 font-semibold text-blue-900"
        [style.width.px]="size()" [style.height.px]="size()">{{ initial() }}</span>
    }
  `,
})
export class Avatar {
  private readonly uploads = inject(UploadsService);
  readonly userId = input.required<number>();
  readonly avatarRef = input<string | null>(null);
  readonly name = input('');
  readonly size = input(36);

  protected readonly initial = computed(() => (this.name().charAt(0) || '?').toUpperCase());
  protected readonly url = toSignal(
    toObservable(computed(() => ({ id: this.userId(), ref: this.avatarRef() }))).pipe(
      switchMap(({ id, ref }) => (ref ? this.uploads.avatarUrl(id, ref).pipe(catchError(() => of(''))) : of(''))),
    ),
    { initialValue: '' },
  );
}
