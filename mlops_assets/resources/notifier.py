"""Notifications to Slack and Discord incoming webhooks; never a reason for a run to fail.

The webhook URLs are secrets: they are read, at send time, from the environment variables
this resource names (``dg.EnvVar(...).get_value()``), never stored in config, logged or put
in metadata. With neither variable set, a notification is only logged.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

import dagster as dg
from pydantic import Field

DISCORD_LIMIT = 2000  # characters of a Discord message


class Notifier(dg.ConfigurableResource):
    """Posts short messages to the configured Slack and Discord incoming webhooks."""

    slack_webhook_env: str = Field(
        default="MLOPS_SLACK_WEBHOOK_URL",
        description="Environment variable holding the Slack incoming-webhook URL (unset: none).",
    )
    discord_webhook_env: str = Field(
        default="MLOPS_DISCORD_WEBHOOK_URL",
        description="Environment variable holding the Discord webhook URL (unset: none).",
    )
    timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long one webhook may take before it is given up."
    )

    def send(
        self, title: str, text: str, link: str | None, log: logging.Logger | dg.DagsterLogManager
    ) -> dict[str, str]:
        """Post the message to every configured webhook; return what happened per channel.

        A webhook that errors or times out is logged as a warning (without its URL) and
        reported here as ``failed: ...``; it never raises.
        """
        payloads = {
            "slack": {
                "text": f"*{title}*\n{text}" + (f"\n<{link}|Open in Dagster>" if link else "")
            },
            "discord": {
                "content": (f"**{title}**\n{text}" + (f"\n{link}" if link else ""))[:DISCORD_LIMIT]
            },
        }
        urls = {
            "slack": dg.EnvVar(self.slack_webhook_env).get_value(),
            "discord": dg.EnvVar(self.discord_webhook_env).get_value(),
        }
        outcome = {}
        for channel, url in urls.items():
            if not url:
                outcome[channel] = "not configured"
                continue
            outcome[channel] = self._post(url, payloads[channel])
            if outcome[channel] != "sent":
                log.warning(f"{channel} notification {title!r} {outcome[channel]}")
        if not any(url for url in urls.values()):
            log.info(f"notification (no webhook configured): {title}: {text}")
        return outcome

    def _post(self, url: str, payload: dict[str, str]) -> str:
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "mlops-assets"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                response.read()
        except urllib.error.HTTPError as error:
            return f"failed: HTTP {error.code}"
        except TimeoutError:
            return f"failed: timed out after {self.timeout_seconds:g} s"
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                return f"failed: timed out after {self.timeout_seconds:g} s"
            return f"failed: {type(reason).__name__}"
        return "sent"
