#!/usr/bin/env python3
"""CDK app: one MedicalTranscription-<env> stack per environment in cdk.json, checked by cdk-nag.

No AWS calls here: synth needs neither credentials, Docker nor network.
"""

from __future__ import annotations

import os
import sys

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks

from stacks import constants
from stacks.config import CONTEXT_KEY, ConfigError, load_environments
from stacks.function import LayerNotBuiltError
from stacks.transcription_stack import TranscriptionStack


def build_app(app: App | None = None) -> App:
    """Add every environment's stack and the nag packs to `app` (a new App by default).

    Raises stacks.config.ConfigError naming the bad cdk.json key: synth fails with that message.
    """
    app = app if app is not None else App()
    for config in load_environments(app.node.try_get_context(CONTEXT_KEY)):
        stack = TranscriptionStack(
            app,
            config.stack_name,
            config=config,
            env=Environment(
                account=config.account or os.environ.get("CDK_DEFAULT_ACCOUNT"),
                region=config.region,
            ),
            termination_protection=config.termination_protection,
            description=f"Amazon Transcribe Medical pipeline ({config.name})",
        )
        Tags.of(stack).add("Project", constants.TAG_PROJECT)
        Tags.of(stack).add("Environment", config.name)
    # A finding that is neither fixed nor acknowledged (stacks/compliance.py) fails synth.
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app), HIPAASecurityChecks(app), NIST80053R5Checks(app)
    )
    return app


def main() -> int:
    """Synthesize; a bad setting is one line on stderr (the key and what it allows), not a
    traceback: the person reading it is editing cdk.json (or has not run `make install`)."""
    try:
        app = build_app()
    except (ConfigError, LayerNotBuiltError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
