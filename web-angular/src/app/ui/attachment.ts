import { ChangeDetectionStrategy, Component, computed, inject, input } from '@angular/core';
import { toObservable, toSignal } from '@angular/core/rxjs-interop';
import { catchError, of, switchMap } from 'rxjs';

import { Attachment } from '../core/api.types';
import { UploadsService } from '../core/uploads.service';

/** The largest an image is shown in the chat, in CSS pixels a side. */
export const MAX_PREVIEW_PX = 320;

/** The size an image is laid out at: its own, scaled down to fit MAX_PREVIEW_PX, known before it loads. */
export function previewSize(width: number, height: number): { width: number; height: number } {
  const scale = Math.min(1, MAX_PREVIEW_PX / width, MAX_PREVIEW_PX / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** A file size for people. */
export function humanSize(bytes: number): string {
  if (bytes < 1024) {
    return `${bytes} B`;
  }
  const units = ['KB', 'MB', 'GB'];
  let n = bytes / 1024;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

/**
 * One attachment of a message. An image takes its final size at once (the server sent its
 * dimensions) and shows its thumbnail until the file, fetched through a signed URL, replaces it;
 * another file is a link that fetches its URL when followed.
 */
@Component({
  selector: 'bt-attachment',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    @if (size(); as s) {
      <a [href]="url() || null" target="_blank" rel="noopener" class="mt-1 inline-block" [attr.aria-label]="'Open image ' + attachment().name">
        <img [src]="url() || attachment().thumbnail || ''" [width]="s.width" [height]="s.height" [alt]="attachment().name"
          class="rounded-md bg-slate-200 object-cover" [style.width.px]="s.width" [style.height.px]="s.height"
          [attr.data-loaded]="!!url()" />
      </a>
    } @else {
      <button type="button" (click)="open()" class="mt-1 flex items-center gap-2 rounded-md border border-slate-300 bg-white px-3 py-2 text-sm hover:bg-slate-50">
        <svg viewBox="0 0 24 24" width="16" height="16" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M21 11l-8.5 8.5a5 5 0 01-7-7L14 4a3.5 3.5 0 015 5l-8.5 8.5a2 2 0 01-3-3L15 7" /></svg>
        <span class="font-medium">{{ attachment().name }}</span>
        <span class="text-slate-600">{{ sizeText() }}</span>
      </button>
    }
  `,
})
export class AttachmentView {
  private readonly uploads = inject(UploadsService);
  readonly roomId = input.required<number>();
  readonly attachment = input.required<Attachment>();

  protected readonly size = computed(() => {
    const a = this.attachment();
    return a.width && a.height ? previewSize(a.width, a.height) : null;
  });
  protected readonly sizeText = computed(() => humanSize(this.attachment().size));
  /** The image's signed URL once fetched (images only). */
  protected readonly url = toSignal(
    toObservable(computed(() => ({ room: this.roomId(), a: this.attachment() }))).pipe(
      switchMap(({ room, a }) =>
        a.width && a.height ? this.uploads.attachmentUrl(room, a.id).pipe(catchError(() => of(''))) : of(''),
      ),
    ),
    { initialValue: '' },
  );

  protected open(): void {
    // Opened at once (a popup allowed by the click), pointed at the file when its URL arrives.
    const tab = window.open('', '_blank');
    this.uploads.attachmentUrl(this.roomId(), this.attachment().id).subscribe({
      next: (url) => {
        if (tab) {
          tab.opener = null;
          tab.location.href = url;
        }
      },
      error: () => tab?.close(),
    });
  }
}
