import { provideHttpClient, withInterceptors } from '@angular/common/http';
import { ApplicationConfig, provideBrowserGlobalErrorListeners, provideZonelessChangeDetection } from '@angular/core';
import { provideRouter, withComponentInputBinding } from '@angular/router';
import { provideEffects } from '@ngrx/effects';
import { provideStore } from '@ngrx/store';

import { routes } from './app.routes';
import { authInterceptor } from './core/auth.interceptor';
import { AuthEffects, ChatEffects, LiveEffects, RoomsEffects, chatFeature, roomsFeature, sessionFeature } from './state';

export const appConfig: ApplicationConfig = {
  providers: [
    provideBrowserGlobalErrorListeners(),
    provideZonelessChangeDetection(),
    provideRouter(routes, withComponentInputBinding()),
    provideHttpClient(withInterceptors([authInterceptor])),
    provideStore(
      {
        [sessionFeature.name]: sessionFeature.reducer,
        [roomsFeature.name]: roomsFeature.reducer,
        [chatFeature.name]: chatFeature.reducer,
      },
      { runtimeChecks: { strictActionImmutability: true, strictStateImmutability: true } },
    ),
    provideEffects(AuthEffects, LiveEffects, RoomsEffects, ChatEffects),
  ],
};
