"""The peer benchmark's metric set as a plain pandas script, as an analyst would write it from
the definitions in DESIGN section 4: channel_satisfaction, pair_summary and kpis over the
deskpulse lake's Parquet files, by ISO week (UTC), with the benchmark's calendar-time reply
targets. Writes one CSV per metric into OUT.

    python pandas_metrics.py LAKE OUT
"""

import sys

import numpy as np
import pandas as pd

Z = 1.959963984540054
SATISFIED = 4.0
TARGETS = {"phone": 60.0, "chat": 300.0, "messaging": 300.0, "sms": 300.0, "social": 300.0,
           "bot": 300.0, "email": 14400.0, "portal": 14400.0}
DEFAULT_TARGET = 28800.0


def read(lake, table, columns):
    return pd.read_parquet(f"{lake}/{table}", columns=columns)


def iso_week(ts):
    iso = ts.dt.isocalendar()
    return iso.year.astype(str) + "-W" + iso.week.astype(str).str.zfill(2)


def wilson(k, n):
    k, n = k.astype(float), n.astype(float).where(n > 0)
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * np.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return (centre - half).clip(lower=0.0), (centre + half).clip(upper=1.0)


def seconds(a, b):
    return (b - a).dt.total_seconds()


def offered(survey_offered):
    return survey_offered.isna() | (survey_offered == True)  # noqa: E712 (nullable column)


def ticket_facts(tickets, interactions, rated_tickets):
    i = interactions
    replies = i[i.is_public & i.actor_role.isin(["agent", "bot"])] \
        .assign(agent=lambda d: d.actor_role == "agent") \
        .groupby("ticket_id").agg(first_reply_at=("at", "min"), agent_replies=("agent", "sum"))
    requester = i[i.actor_role == "requester"].groupby("ticket_id").channel.nunique() \
        .rename("requester_channels")
    last = i.sort_values(["ticket_id", "at", "seq", "interaction_id"], na_position="first") \
        .drop_duplicates("ticket_id", keep="last").set_index("ticket_id").channel \
        .rename("last_channel")
    f = tickets.join(replies, on="ticket_id").join(requester, on="ticket_id") \
        .join(last, on="ticket_id")
    f["agent_replies"] = f.agent_replies.fillna(0)
    f["has_rating"] = f.ticket_id.isin(rated_tickets)
    f["frt_seconds"] = seconds(f.opened_at, f.first_reply_at.fillna(f.first_response_at))
    f["ttr_seconds"] = seconds(f.opened_at, f.resolved_at)
    return f


def channel_satisfaction(facts, ratings):
    r = ratings.rename(columns={"channel": "rating_channel"}) \
        .merge(facts[["ticket_id", "channel", "category", "last_channel"]], on="ticket_id")
    r["period"] = iso_week(r.rated_at)
    r["category"] = r.category.fillna("")
    r["sat"] = (r.score_5 >= SATISFIED).astype(int)
    commented = r.comment.notna()
    r["c_sentiment"] = r.sentiment.where(commented)
    r["c_scored"] = commented & r.sentiment.notna()
    r["c_negative"] = commented & (r.sentiment <= -0.05)
    r["located"] = r.rating_channel.notna() & r.last_channel.notna()
    r["in_channel"] = r.rating_channel == r.last_channel
    g = r.groupby(["period", "channel"], dropna=False)
    rs = g.agg(ratings=("sat", "size"), rated_tickets=("ticket_id", "nunique"),
               satisfied=("sat", "sum"), mean_score=("score_5", "mean"),
               comment_sentiment=("c_sentiment", "mean"), comments=("c_scored", "sum"),
               negative_comments=("c_negative", "sum"), located_ratings=("located", "sum"),
               in_channel_ratings=("in_channel", "sum"))
    cell = r.groupby(["period", "channel", "category"], dropna=False).sat.mean().rename("csat") \
        .reset_index()
    mix = r.groupby(["period", "category"], dropna=False).size().rename("n").reset_index()
    cell = cell.merge(mix, on=["period", "category"])
    cell["w"] = cell.csat * cell.n
    adj = cell.groupby(["period", "channel"], dropna=False)[["w", "n"]].sum()
    rs["csat_adjusted"] = adj.w / adj.n

    t = facts[facts.resolved_at.notna()].copy()
    t["period"] = iso_week(t.resolved_at)
    t["offered"] = offered(t.survey_offered)
    t["responded"] = t.offered & t.has_rating
    t["with_requester"] = t.requester_channels.notna()
    t["switched"] = t.requester_channels > 1
    ts = t.groupby(["period", "channel"], dropna=False).agg(
        resolved=("ticket_id", "size"), offered=("offered", "sum"),
        responded=("responded", "sum"), with_requester=("with_requester", "sum"),
        switched=("switched", "sum"), median_frt_seconds=("frt_seconds", "median"),
        median_ttr_seconds=("ttr_seconds", "median"))

    out = rs.join(ts, how="outer")
    for c in ["ratings", "rated_tickets", "satisfied", "comments", "located_ratings",
              "resolved", "offered", "responded", "with_requester"]:
        out[c] = out[c].fillna(0)
    out["csat"] = out.satisfied / out.ratings.where(out.ratings > 0)
    out["csat_low"], out["csat_high"] = wilson(out.satisfied, out.ratings)
    out["negative_comment_share"] = out.negative_comments / out.comments.where(out.comments > 0)
    out["in_channel_rating_share"] = \
        out.in_channel_ratings / out.located_ratings.where(out.located_ratings > 0)
    out["response_rate"] = out.responded / out.offered.where(out.offered > 0)
    out["channel_switch_share"] = \
        out.switched / out.with_requester.where(out.with_requester > 0)
    return out.reset_index()


def pairs(interactions, tickets, ratings, ticket_rating):
    i = interactions
    pub = i[i.is_public & i.actor_role.isin(["requester", "agent", "bot"])] \
        .sort_values(["ticket_id", "at", "seq", "interaction_id"], na_position="first")
    pub["pos"] = pub.groupby("ticket_id").cumcount() + 1
    is_req = pub.actor_role == "requester"
    previous = pub.groupby("ticket_id").actor_role.shift()
    pub["run"] = (is_req & (previous != "requester")).astype(int) \
        .groupby(pub.ticket_id).cumsum()
    req = pub[is_req].groupby(["ticket_id", "run"]).agg(
        request_at=("at", "min"), last_pos=("pos", "max"),
        request_sentiment=("sentiment", "mean"), request_channel=("channel", "last"))
    req["followup_sentiment"] = req.groupby(level="ticket_id").request_sentiment.shift(-1)
    req = req.reset_index()
    req["next_pos"] = req.last_pos + 1
    resp = pub[["ticket_id", "pos", "at", "interaction_id", "actor_role", "actor_id"]].rename(
        columns={"pos": "next_pos", "at": "response_at", "interaction_id": "response_id",
                 "actor_role": "responder_role", "actor_id": "responder_id"})
    p = req.merge(resp, on=["ticket_id", "next_pos"])
    p["is_last_pair"] = p.run == p.groupby("ticket_id").run.transform("max")
    reply_rating = ratings[ratings.interaction_id.notna()] \
        .sort_values(["rated_at", "rating_id"]) \
        .drop_duplicates("interaction_id", keep="last") \
        .set_index("interaction_id").score_5.rename("reply_score")
    p = p.merge(tickets[["ticket_id", "category"]], on="ticket_id") \
        .join(reply_rating, on="response_id").join(ticket_rating, on="ticket_id")
    p["latency_seconds"] = seconds(p.request_at, p.response_at)
    p["rating"] = p.reply_score.fillna(p.ticket_score.where(p.is_last_pair))
    target = p.request_channel.map(TARGETS).fillna(DEFAULT_TARGET)
    p["rating_component"] = (p.rating - 1.0) / 4.0
    p["mood_component"] = (p.followup_sentiment + 1.0) / 2.0
    prompt = (1.0 - (p.latency_seconds - target) / (3.0 * target)).clip(lower=0.0)
    prompt[p.latency_seconds <= target] = 1.0
    weights = 0.5 * p.rating_component.notna() + 0.3 * p.mood_component.notna() + 0.2
    p["pair_score"] = 100.0 * (0.5 * p.rating_component.fillna(0.0)
                               + 0.3 * p.mood_component.fillna(0.0) + 0.2 * prompt) / weights
    p["sentiment_delta"] = p.followup_sentiment - p.request_sentiment
    p["hotspot"] = p.request_sentiment <= -0.5
    return p


def pair_summary(p):
    parts = []
    for dimension, column in [("responder_role", "responder_role"), ("responder", "responder_id"),
                              ("channel", "request_channel"), ("category", "category")]:
        g = p.assign(with_rating=p.rating_component.notna().astype(float),
                     with_mood=p.mood_component.notna().astype(float)) \
            .groupby(column, dropna=False).agg(
                pairs=("ticket_id", "size"), mean_pair_score=("pair_score", "mean"),
                mean_rating=("rating", "mean"), share_with_rating=("with_rating", "mean"),
                share_with_mood=("with_mood", "mean"),
                mean_request_sentiment=("request_sentiment", "mean"),
                mean_followup_sentiment=("followup_sentiment", "mean"),
                mean_sentiment_delta=("sentiment_delta", "mean"),
                pairs_with_followup=("sentiment_delta", "count"), hotspots=("hotspot", "sum"),
                median_latency_seconds=("latency_seconds", "median"))
        g.index = g.index.fillna("")
        parts.append(g.rename_axis("value").reset_index().assign(dimension=dimension))
    return pd.concat(parts)


def kpis(facts, ratings, tickets):
    f = facts
    o = f.assign(period=iso_week(f.opened_at)).groupby("period").agg(
        opened=("ticket_id", "size"), median_frt_seconds=("frt_seconds", "median"),
        mean_frt_seconds=("frt_seconds", "mean"))
    t = f[f.resolved_at.notna()].copy()
    t["period"] = iso_week(t.resolved_at)
    t["fcr"] = (t.reopen_count.fillna(0) == 0) & (t.agent_replies <= 1)
    t["reopened"] = t.reopen_count > 0
    t["sla_met"] = t.made_sla == True  # noqa: E712 (nullable column)
    t["sla_known"] = t.made_sla.notna()
    t["offered"] = offered(t.survey_offered)
    t["responded"] = t.offered & t.has_rating
    s = t.groupby("period").agg(
        resolved=("ticket_id", "size"), median_ttr_seconds=("ttr_seconds", "median"),
        mean_ttr_seconds=("ttr_seconds", "mean"), fcr_tickets=("fcr", "sum"),
        reopened=("reopened", "sum"), mean_reassignments=("reassignment_count", "mean"),
        sla_met=("sla_met", "sum"), sla_known=("sla_known", "sum"),
        offered=("offered", "sum"), responded=("responded", "sum"))
    r = ratings.merge(tickets[["ticket_id", "resolution_path"]], on="ticket_id")
    r["period"] = iso_week(r.rated_at)
    r["sat"] = r.score_5 >= SATISFIED
    r["bot"] = r.resolution_path == "bot"
    r["human"] = r.resolution_path == "agent"
    r["bot_sat"] = r.bot & r.sat
    r["human_sat"] = r.human & r.sat
    q = r.groupby("period").agg(ratings=("sat", "size"), satisfied=("sat", "sum"),
                                bot_ratings=("bot", "sum"), bot_satisfied=("bot_sat", "sum"),
                                human_ratings=("human", "sum"),
                                human_satisfied=("human_sat", "sum"))
    out = o.join(s, how="outer").join(q, how="outer")
    for c in ["opened", "resolved", "fcr_tickets", "reopened", "sla_met", "sla_known", "offered",
              "responded", "ratings", "bot_ratings", "human_ratings"]:
        out[c] = out[c].fillna(0)
    out["fcr_rate"] = out.fcr_tickets / out.resolved.where(out.resolved > 0)
    out["fcr_low"], out["fcr_high"] = wilson(out.fcr_tickets, out.resolved)
    out["csat"] = out.satisfied / out.ratings.where(out.ratings > 0)
    out["bot_csat"] = out.bot_satisfied / out.bot_ratings.where(out.bot_ratings > 0)
    out["human_csat"] = out.human_satisfied / out.human_ratings.where(out.human_ratings > 0)
    return out.rename_axis("period").reset_index()


def main():
    lake, out = sys.argv[1], sys.argv[2]
    tickets = read(lake, "tickets", [
        "ticket_id", "channel", "category", "opened_at", "first_response_at", "resolved_at",
        "survey_offered", "reassignment_count", "reopen_count", "made_sla", "resolution_path"])
    interactions = read(lake, "interactions", [
        "interaction_id", "ticket_id", "at", "seq", "actor_role", "actor_id", "channel",
        "is_public", "sentiment"])
    ratings = read(lake, "ratings", [
        "rating_id", "ticket_id", "interaction_id", "rated_at", "channel", "score_5", "comment",
        "sentiment"])
    ticket_rating = ratings.sort_values(["rated_at", "rating_id"]) \
        .drop_duplicates("ticket_id", keep="last").set_index("ticket_id").score_5 \
        .rename("ticket_score")
    facts = ticket_facts(tickets, interactions, ticket_rating.index)
    channel_satisfaction(facts, ratings).to_csv(f"{out}/channel_satisfaction.csv", index=False)
    kpis(facts, ratings, tickets).to_csv(f"{out}/kpis.csv", index=False)
    del facts
    pair_summary(pairs(interactions, tickets, ratings, ticket_rating)) \
        .to_csv(f"{out}/pair_summary.csv", index=False)


if __name__ == "__main__":
    main()
