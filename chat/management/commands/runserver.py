"""`manage.py runserver`: Daphne's, draining on SIGTERM under the autoreloader too.

Daphne's command (the "daphne" app) serves HTTP and WebSockets; without
the autoreloader (`--noreload`) Daphne takes SIGTERM itself and drains
(chat.daphne_drain). With it, Django's autoreloader would kill the server
on SIGTERM without a drain: chat.reloader runs it instead. INSTALLED_APPS
lists "chat" before "daphne" so that this command is the one Django finds.
"""

from __future__ import annotations

from typing import Any

from daphne.management.commands.runserver import Command as DaphneRunserverCommand

from chat import daphne_drain, reloader


class Command(DaphneRunserverCommand):
    def run(self, **options: Any) -> None:
        """Run the server, under the autoreloader unless `--noreload`."""
        if not options["use_reloader"]:
            self.inner_run(None, **options)
            return
        try:
            if reloader.in_child():
                reloader.Child(serve=self.inner_run, stop=daphne_drain.stop_from_thread).run(
                    **options
                )
            else:
                raise SystemExit(reloader.Parent().run())
        except KeyboardInterrupt:
            pass  # CONTROL-C ends runserver quietly, as in Django
