import { provideZonelessChangeDetection } from '@angular/core';

/** Unit tests run zoneless, as the app does. */
export default [provideZonelessChangeDetection()];
