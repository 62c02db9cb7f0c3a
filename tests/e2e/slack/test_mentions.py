"""Data never pings anyone: what the bot sends as a message's `text` has Slack's control
characters escaped, as its blocks do (a person called `<!channel>` is shown, not obeyed).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col

from bot.clock import FixedClock
from bot.settings import Settings
from bot.slack.notifier import SlackNotifier
from bot.store.models import Send
from tests.support.factories import REP_ID, make_campaign, make_rep
from tests.support.fake_slack import FakeSlack
from tests.support.sends import make_task
from tests.support.slack_requests import SlackRequests

FEED = "C0FEED001"
MENTIONS = ("<!channel>", "<!here>", "<@U0BOSS01>", "<!everyone>")
STEPS = [{"day": 1, "send": "task", "subject": "Hi {{ first_name }} <!here>", "body": "Hello"}]


def texts(fake: FakeSlack) -> list[str]:
    """Every fallback text the bot sent: Web API messages and response_url replies."""
    sent = [str(call.params.get("text", "")) for call in fake.calls if call.method.startswith("chat.")]
    return sent + [response.text for response in fake.responses]


def assert_no_mentions(fake: FakeSlack) -> None:
    for text in texts(fake):
        assert not any(mention in text for mention in MENTIONS), text


def test_task_messages_failures_notices_and_the_feed_escape_their_text(
    session: Session,
    fake_slack: FakeSlack,
    engine: object,
    slack_client: object,
    clock: FixedClock,
    slack_settings: Settings,
) -> None:
    notifier = SlackNotifier(engine, slack_client, clock, slack_settings.model_copy(update={"feed_channel": FEED}))  # type: ignore[arg-type]
    make_rep(session, name="<!everyone> Rita")
    campaign = make_campaign(session, STEPS, name="<!channel> Q4")
    send = make_task(session, due_at=clock.now(), campaign=campaign, first_name="<@U0BOSS01>", last_name="& Co")

    notifier.task_due(send.id)
    post = fake_slack.calls_to("chat.postMessage")[0]
    assert post["channel"] == REP_ID
    assert post["text"] == (
        "Email task: “Hi &lt;@U0BOSS01&gt; &lt;!here&gt;” to &lt;@U0BOSS01&gt; &amp; Co (step 1 of “&lt;!channel&gt; Q4”)"
    )
    session.execute(
        update(Send).where(col(Send.id) == send.id).values(status="failed", last_error="550 <!here> rejected")
    )
    session.commit()
    notifier.send_failed(send.id)
    assert "550 &lt;!here&gt; rejected" in fake_slack.calls_to("chat.update")[0]["text"]
    notifier.send_notice(send.id, "Bounced <!channel>")
    assert len(fake_slack.calls_to("chat.postMessage")) >= 4  # the task, the feed, the failure, the notice
    assert_no_mentions(fake_slack)


def test_replies_to_commands_escape_their_text(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session, clock: FixedClock
) -> None:
    make_campaign(session, STEPS, name="<!channel> Q4")
    session.commit()
    for typed in (
        "<!here>",
        "list",
        'show "<!channel> Q4"',
        'add "<!channel> Q4" <@U0BOSS01> <ada@example.com>',
        'show "<!here> nothing"',
        'remove "<!channel> Q4" <!everyone>@example.com',
    ):
        url = fake_slack.response_url()
        assert slack.command(typed, response_url=url).status == 200
        fake_slack.response_to(url)
    url = fake_slack.response_url()
    assert slack.command("<!here>", command="/tasks", response_url=url).status == 200
    fake_slack.response_to(url)
    assert "&lt;!channel&gt; Q4" in " ".join(texts(fake_slack))
    assert_no_mentions(fake_slack)
