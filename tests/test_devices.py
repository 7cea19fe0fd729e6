"""One person, several devices (issue 18): for each data type and night exactly one source counts, by the default
order or the person's choice (on their page or `emberwatch person prefer`); its source is kept beside every value;
nothing is summed across devices; and a switch of device starts a fresh baseline. Real DuckDB files throughout."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import requests
from typer.testing import CliRunner

from connectors.base import PersonContext
from connectors.records import DailyActivity
from features.engine import compute_features, rebuild_all
from pipelines import steps, validate
from pipelines.cli_connectors import enroll_person
from pipelines.import_google_takeout import import_takeout
from pipelines.people import add_source, choose_sources
from pipelines.sources import sources_for
from storage.store import NightRange, Store
from tests.fake_oura import load_nights
from tests.helpers import calm_history
from tests.test_oura import config, fake, live_env  # noqa: F401  (fixtures)
from tests.test_web import door  # noqa: F401  (fixture)

TAKEOUT = Path(__file__).resolve().parent / "fixtures/google_takeout"
SOURCE_COLUMNS = ["sleep_source", "resting_hr_source", "hrv_source", "spo2_source", "steps_source"]


def nights_of(store: Store, person: str) -> pd.DataFrame:
    return store.query_df("SELECT * FROM nightly_features WHERE person_id = ? ORDER BY night_date", [person])


def from_source(records: list, source: str) -> list:
    return [r.model_copy(update={"source": source}) for r in records]


def test_a_takeout_fitbit_and_an_oura_ring_give_one_row_a_night_with_the_expected_source_per_data_type(
        live_env, fake, store):  # noqa: F811
    # The Fitbit history comes from a Google Takeout archive; the ring from Oura's API (a fake speaking its shapes)
    # for three of the same nights.
    store.add_person("both", "both@example.org", "Europe/Oslo", "google-takeout", config(fake))
    import_takeout(store, validate.takeout_person(store.person("both")), TAKEOUT)
    assert add_source(store, "both", "oura") and not add_source(store, "both", "oura")
    oura_nights = [date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 12)]
    load_nights(fake, oura_nights, "Europe/Oslo")
    enroll_person(store, "both", "oura", lambda url: requests.get(url, timeout=10), timeout_s=20)
    person = store.person("both")
    assert person.sources == ("google-takeout", "oura") and person.source == "oura"  # the ring syncs nightly
    ring, = sources_for(person, store)  # the nightly run syncs the ring; the Takeout arrives by import
    assert ring.name == "oura"
    fetched = steps.fetch_window(ring, PersonContext("both", "Europe/Oslo"), date(2026, 9, 30), date(2026, 10, 12))
    steps.update_features(store, steps.ingest(store, [fetched]).people.values())
    # A Takeout import now still fits this person (the archive is one of their sources).
    validate.takeout_person(store.person("both"))

    f = nights_of(store, "both").set_index("night_date")
    assert not f.index.duplicated().any()
    on = {d.date(): row for d, row in f.iterrows()}
    # Both devices that night: the ring counts for the night's measures, the Fitbit for the day's steps.
    assert on[date(2026, 10, 12)][SOURCE_COLUMNS].tolist() == ["oura", "oura", "oura", "oura", "google-takeout"]
    assert on[date(2026, 10, 12)].resting_hr_bpm == 52.0  # the ring's (the Fitbit said 56), never a mean
    assert on[date(2026, 10, 12)].steps_count == 130  # the Fitbit's (the ring said 8,200), never a sum
    assert on[date(2026, 10, 1)].steps_count == 4500 and on[date(2026, 10, 1)].steps_source == "google-takeout"
    # Only the Fitbit that night: its sleep, resting HR and HRV (the Takeout's nightly summary); no SpO2 at all.
    assert on[date(2026, 10, 25)][SOURCE_COLUMNS[:3]].tolist() == ["google-takeout"] * 3
    assert on[date(2026, 10, 25)].rmssd_ms == 36.9 and pd.isna(on[date(2026, 10, 25)].spo2_source)
    # Only the ring's steps on 2 October (the Takeout has none that day).
    assert on[date(2026, 10, 2)].steps_source == "oura" and on[date(2026, 10, 2)].steps_count == 8100
    # Every value's source is one the person has.
    assert set(f[SOURCE_COLUMNS].stack().dropna()) == {"google-takeout", "oura"}

    # The person's choice overrides the default order: the Fitbit's sleep counts, the ring's HRV still does.
    assert choose_sources(store, "both", {"sleep": "google-takeout"}) == ["sleep"]
    night = nights_of(store, "both").set_index("night_date").loc[pd.Timestamp(2026, 10, 12)]
    assert night.sleep_source == "google-takeout" and night.tst_min == 440.0 and night.hrv_source == "oura"


def test_steps_from_two_devices_on_one_day_are_never_added(store):
    day = date(2026, 3, 2)
    store.add_person("w", "w@example.org", "Europe/London", "apple-health")
    add_source(store, "w", "oura")
    compute_features(store, store.upsert_records([
        DailyActivity(person_id="w", source="apple-health", day=day, steps=10_000, very_active_min=30),
        DailyActivity(person_id="w", source="oura", day=day, steps=9_000, very_active_min=20)]))
    row = nights_of(store, "w").iloc[0]
    assert (row.steps_count, row.active_min, row.steps_source) == (10_000, 30.0, "apple-health")
    choose_sources(store, "w", {"steps": "oura"})
    row = nights_of(store, "w").iloc[0]
    assert (row.steps_count, row.active_min, row.steps_source) == (9_000, 20.0, "oura")


def test_a_device_that_cannot_make_the_night_gives_way_to_one_that_can_whatever_the_order(store):
    # The ring comes first for sleep and the watch for steps, but that night the ring logged only a 40-minute
    # nap and the watch's activity lost its step count: the other device's main sleep and steps count, unless
    # the person chose otherwise.
    from connectors.records import SleepSession

    night = date(2026, 3, 3)
    store.add_person("w", "w@example.org", "Europe/London", "apple-health")
    add_source(store, "w", "oura")

    def log(source: str, start_h: int, minutes: int, main: bool) -> SleepSession:
        start = datetime(2026, 3, 2, start_h, tzinfo=timezone.utc)
        return SleepSession(person_id="w", source=source, source_session_id=f"{source}-{start_h}", night_date=night,
                            start_utc=start, end_utc=start + timedelta(minutes=minutes), tz_name="Europe/London",
                            is_main_sleep=main, log_type="classic", minutes_asleep=minutes - 10, minutes_awake=10,
                            time_in_bed_min=minutes)

    compute_features(store, store.upsert_records([
        log("oura", 15, 40, False), log("apple-health", 23, 450, True),
        DailyActivity(person_id="w", source="apple-health", day=night, very_active_min=30),
        DailyActivity(person_id="w", source="oura", day=night, steps=7_000, very_active_min=20)]))
    row = nights_of(store, "w").iloc[0]
    assert (row.sleep_source, row.time_in_bed_min, row.nap_min) == ("apple-health", 450.0, 0.0)
    assert (row.steps_source, row.steps_count) == ("oura", 7_000)
    # A choice made on the page outranks the order, not completeness: the ring's nap still cannot be the night.
    choose_sources(store, "w", {"sleep": "oura"})
    row = nights_of(store, "w").iloc[0]
    assert (row.sleep_source, row.time_in_bed_min) == ("apple-health", 450.0)


def test_a_choice_is_refused_for_a_device_the_person_does_not_have(store):
    store.add_person("w", "w@example.org", "Europe/London", "apple-health")
    with pytest.raises(validate.InputError, match="w has no source 'oura'"):
        choose_sources(store, "w", {"hrv": "oura"})
    with pytest.raises(validate.InputError, match="--data 'mood'"):
        choose_sources(store, "w", {"mood": "apple-health"})
    assert store.source_choices("w") == {}


def test_status_names_every_device_a_person_has_in_the_order_they_came(store):
    from pipelines.status import status_rows

    store.add_person("w", "w@example.org", "Europe/London", "apple-health")
    store.add_person("one", "one@example.org", "Europe/London", "oura")
    add_source(store, "w", "oura")
    assert {r.person_id: r.sources for r in status_rows(store)} == {"one": "oura", "w": "apple-health+oura"}


SWITCH = date(2026, 3, 1)  # the first night on the ring


def switching_history(person: str) -> list:
    """40 nights on a Fitbit, then 30 on an Oura ring that reads longer sleep and a higher RMSSD."""
    before = calm_history(person, SWITCH - timedelta(days=40), 40, tst_min=420, rmssd=45.0, rhr=60.0)
    after = calm_history(person, SWITCH, 30, tst_min=480, rmssd=70.0, rhr=52.0)
    return from_source(before, "fitbit-web") + from_source(after, "oura")


def test_switching_devices_starts_a_fresh_baseline_from_the_new_device_alone(store):
    store.add_person("sw", "sw@example.org", "Europe/London", "fitbit-web")
    add_source(store, "sw", "oura")
    store.upsert_records(switching_history("sw"))
    rebuild_all(store)  # a long span: baselines by window
    s = store.query_df("SELECT * FROM night_signals WHERE person_id = 'sw' ORDER BY night_date")
    s["k"] = [(d.date() - SWITCH).days for d in s.night_date]
    after = s[s.k >= 0]
    # A night's baseline holds the ring's usable nights that end a week before it: none for the first week.
    assert after.baseline_valid_nights.tolist() == [max(0, k - 6) for k in after.k]
    assert after.warming_up.tolist() == [k - 6 < 14 for k in after.k]
    # No comparison with the Fitbit's nights: nothing to compare with while the ring's usual is learnt, and
    # once it is, the ring's own steady nights are simply usual.
    assert after.ln_rmssd_z.iloc[:7].isna().all() and after.resting_hr_delta_bpm.iloc[:7].isna().all()
    assert after.tst_z.iloc[:7].isna().all()
    assert (after.ln_rmssd_z.iloc[7:].abs() < 1e-9).all() and (after.tst_z.iloc[7:].abs() < 1e-9).all()
    assert not after.recovery_deviates.fillna(False).any() and not after.sleep_deviates.fillna(False).any()
    # The Fitbit's nights before the switch are untouched: their usual was long learnt.
    assert not s[(s.k < 0) & (s.k >= -20)].warming_up.any()

    # A nightly run (a few target nights: baselines gathered by a join) gives the same numbers.
    window = s.set_index("night_date")[["baseline_valid_nights", "warming_up", "ln_rmssd_z"]]
    compute_features(store, {"sw": NightRange(SWITCH + timedelta(days=18), SWITCH + timedelta(days=29))})
    joined = store.query_df("SELECT night_date, baseline_valid_nights, warming_up, ln_rmssd_z FROM night_signals "
                            "WHERE person_id = 'sw' ORDER BY night_date").set_index("night_date")
    pd.testing.assert_frame_equal(joined, window, check_dtype=False)


def test_an_apple_watchs_sdnn_has_a_baseline_of_its_own_and_measures_recovery_beside_a_rings_rmssd(store):
    """Apple gives SDNN, the ring RMSSD: each night carries the metric of the device that counts, each metric is
    compared with its own usual only, and an Apple Watch alone measures recovery (its SDNN falling)."""
    from connectors.records import NightlyHrv

    first = date(2026, 3, 1)
    store.add_person("aw", "aw@example.org", "Europe/London", "apple-health")
    add_source(store, "aw", "oura")
    watch = []
    for r in from_source(calm_history("aw", first, 70), "apple-health"):
        if isinstance(r, NightlyHrv):
            # SDNN 60 ms, then 35 ms on the last three nights (recovery falling); never an RMSSD
            sdnn = 35.0 if (r.night_date - first).days >= 67 else 60.0
            r = r.model_copy(update={"rmssd_ms": None, "sdnn_ms": sdnn})
        watch.append(r)
    # the ring on every other night of the first 60: RMSSD 30 ms (lower than the watch's SDNN, as it would be)
    ring = [NightlyHrv(person_id="aw", source="oura", night_date=first + timedelta(days=i), rmssd_ms=30.0)
            for i in range(0, 60, 2)]
    store.upsert_records(watch + ring)
    rebuild_all(store)
    f = nights_of(store, "aw").set_index("night_date")
    s = store.query_df("SELECT * FROM night_signals WHERE person_id = 'aw' ORDER BY night_date")
    s = s.set_index("night_date")
    k = {d: (d.date() - first).days for d in f.index}
    ring_nights = [d for d in f.index if k[d] < 60 and k[d] % 2 == 0]
    watch_nights = [d for d in f.index if d not in ring_nights]
    # The ring counts where it was worn (default order), with its RMSSD; elsewhere the watch, with its SDNN.
    assert (f.loc[ring_nights, "hrv_source"] == "oura").all() and (f.loc[ring_nights, "rmssd_ms"] == 30.0).all()
    assert f.loc[ring_nights, "sdnn_ms"].isna().all()
    assert (f.loc[watch_nights, "hrv_source"] == "apple-health").all() and f.loc[watch_nights, "rmssd_ms"].isna().all()
    assert f.loc[watch_nights, "sdnn_ms"].tolist() == [60.0] * (len(watch_nights) - 3) + [35.0] * 3
    # Each metric against its own usual: a night never has both z's, and the watch's steady SDNN is usual (z 0:
    # a baseline that took in the ring's 30 ms would not be).
    assert not (s.ln_rmssd_z.notna() & s.ln_sdnn_z.notna()).any()
    calm = [d for d in watch_nights if 30 <= k[d] < 67]
    assert calm and (s.loc[calm, "ln_sdnn_z"].abs() < 1e-9).all() and s.loc[calm, "ln_rmssd_z"].isna().all()
    assert s.loc[calm, "recovery_deviates"].eq(False).all()  # measured (not empty), and usual
    # The last three nights' SDNN falls well below its usual: recovery deviates, and the flag follows (>= 2 of 3).
    last = [d for d in watch_nights if k[d] >= 67]
    assert (s.loc[last, "ln_sdnn_z"] < -1.5).all() and s.loc[last, "recovery_deviates"].eq(True).all()
    assert s.loc[last, "recovery_flag"].tolist() == [False, True, True]


def test_after_a_switch_the_rolling_windows_hold_the_new_devices_nights_alone(store):
    # Both devices read a steady sleep, the ring an hour longer (480 against 420 minutes): the switch is a change of
    # algorithm, not of sleep. Windows that mixed the two read a 31-minute spread of sleep time, a less regular
    # sleep (SRI 99.3) and 15 minutes of social jet lag out of nothing.
    store.add_person("sw", "sw@example.org", "Europe/London", "fitbit-web")
    add_source(store, "sw", "oura")
    store.upsert_records(switching_history("sw"))
    rebuild_all(store)
    columns = ["tst_sd_14n_min", "onset_sd_14n_min", "sri_14n", "social_jetlag_28n_min"]
    s = store.query_df(f"SELECT night_date, {', '.join(columns)} FROM night_signals WHERE person_id = 'sw' "
                       "ORDER BY night_date").set_index("night_date")
    k = pd.Series([(d.date() - SWITCH).days for d in s.index], index=s.index)
    after = s[k >= 0]
    # The spread waits for the ring's own 10 nights, then reads the ring's steady nights: 0.
    assert after.tst_sd_14n_min.isna().tolist() == [n < 9 for n in k[k >= 0]]
    assert (after.tst_sd_14n_min.dropna() == 0).all() and (after.onset_sd_14n_min.dropna() == 0).all()
    # Regularity compares only nights of one device: no pair across the switch, then the ring's 100.
    # (From 29 March, London's clock change moves the states an hour: that is the SRI's own business.)
    assert after.sri_14n.iloc[0:1].isna().all() and set(after.sri_14n.iloc[:28].dropna()) == {100.0}
    assert set(after.social_jetlag_28n_min.dropna()) == {0.0}
    assert (s[k < 0].tst_sd_14n_min.dropna() == 0).all()  # the Fitbit's weeks before, on their own

    # A nightly run across the switch gives the same numbers as the rebuild.
    compute_features(store, {"sw": NightRange(SWITCH - timedelta(days=2), SWITCH + timedelta(days=12))})
    again = store.query_df(f"SELECT night_date, {', '.join(columns)} FROM night_signals WHERE person_id = 'sw' "
                           "ORDER BY night_date").set_index("night_date")
    pd.testing.assert_frame_equal(again, s, check_dtype=False)


def test_back_on_the_first_device_its_rolling_windows_skip_the_other_devices_nights(store):
    # 40 nights on the Fitbit, 2 on the ring (an hour longer), then the Fitbit again: back on it, the 14-night spread
    # of sleep time reads the Fitbit's nights on both sides of the ring's (>= 10 of them from the first night back)
    # and only those: 0. (The nights as read are then not one run per device: the windows regroup them by device.
    # Taken as runs, the spread would wait for 10 nights back; mixed, it would read the ring's hour.)
    store.add_person("bk", "bk@example.org", "Europe/London", "fitbit-web")
    add_source(store, "bk", "oura")
    back = SWITCH + timedelta(days=2)
    store.upsert_records(
        from_source(calm_history("bk", SWITCH - timedelta(days=40), 40, tst_min=420), "fitbit-web")
        + from_source(calm_history("bk", SWITCH, 2, tst_min=480), "oura")
        + from_source(calm_history("bk", back, 20, tst_min=420), "fitbit-web"))
    rebuild_all(store)
    s = store.query_df("SELECT night_date, tst_sd_14n_min FROM night_signals WHERE person_id = 'bk' "
                       "AND night_date >= ? ORDER BY night_date", [back]).set_index("night_date")
    assert len(s) == 20 and (s.tst_sd_14n_min == 0).all()
    # A nightly run across the return gives the same numbers as the rebuild.
    compute_features(store, {"bk": NightRange(back - timedelta(days=2), back + timedelta(days=12))})
    again = store.query_df("SELECT night_date, tst_sd_14n_min FROM night_signals WHERE person_id = 'bk' "
                           "AND night_date >= ? ORDER BY night_date", [back]).set_index("night_date")
    pd.testing.assert_frame_equal(again, s)


def test_the_page_shows_which_device_counts_and_a_change_there_changes_it(door):  # noqa: F811
    with Store(door.settings.db_path) as store:
        store.add_person("c03", "cy@example.org", "Europe/London", "oura")
        add_source(store, "c03", "fitbit-web")
        both = calm_history("c03", date(2026, 11, 1), 5, tst_min=420)
        store.upsert_records(from_source(both, "oura") + from_source(calm_history(
            "c03", date(2026, 11, 1), 5, tst_min=400), "fitbit-web"))
        rebuild_all(store)
        assert set(nights_of(store, "c03").sleep_source) == {"oura"}
    page_url, html = door.page("c03")
    assert "Your devices" in html and "Oura ring" in html and "(the usual choice)" in html
    assert "Your devices: Oura ring and Fitbit." in html  # both named where things stand, not only the primary
    _, other = door.page("c01")
    assert "Your devices" not in other  # one device: nothing to choose

    form = {"form_token": door.form_token(html), "sleep": "fitbit-web", "resting_hr": "oura", "hrv": "oura",
            "breathing_rate": "oura", "spo2": "oura", "skin_temp": "oura", "steps": "fitbit-web"}
    assert door.http.post(page_url + "/devices", data={**form, "sleep": "garmin"}).status_code == 400
    assert door.http.post(page_url + "/devices", data={**form, "form_token": "forged"}).status_code == 403
    response = door.http.post(page_url + "/devices", data=form)
    assert response.status_code == 200 and "worked out again from the devices you chose" in response.text
    with Store(door.settings.db_path) as store:
        # only what the person changed is their choice; the rest keeps following the usual order
        assert store.source_choices("c03") == {"sleep": "fitbit-web"}
        f = nights_of(store, "c03")
    assert set(f.sleep_source) == {"fitbit-web"} and set(f.tst_min) == {400.0} and set(f.hrv_source) == {"oura"}
    _, html = door.page("c03")
    assert '<option value="fitbit-web" selected>' in html


def test_the_nightly_run_syncs_each_connected_device_and_waits_for_one_not_yet_connected(live_env, store,
                                                                                          monkeypatch):  # noqa: F811
    from connectors.token_vault import TokenCipher
    from storage.tokens import DbTokenStore

    monkeypatch.setenv("EMBERWATCH_GOOGLE_CLIENT_ID", "google-client")
    monkeypatch.setenv("EMBERWATCH_GOOGLE_CLIENT_SECRET", "google-secret")
    store.add_person("two", "two@example.org", "Europe/London", "oura")
    tokens = DbTokenStore(store, TokenCipher())
    tokens.save("two", "oura", {"access_token": "a", "refresh_token": "r"}, ("daily",), new_consent=True)
    add_source(store, "two", "google-health")
    add_source(store, "two", "google-takeout")
    # added but not connected yet: only the ring syncs (and nobody is asked to reconnect a watch never connected)
    assert [s.name for s in sources_for(store.person("two"), store)] == ["oura"]
    tokens.save("two", "google-health", {"access_token": "a", "refresh_token": "r"}, ("sleep",), new_consent=True)
    assert [s.name for s in sources_for(store.person("two"), store)] == ["oura", "google-health"]
    # the ring's consent lost (its token gone): the watch syncs on alone
    tokens.delete("two", "oura")
    assert [s.name for s in sources_for(store.person("two"), store)] == ["google-health"]


def test_two_live_sources_each_reach_their_own_endpoints(live_env, store, monkeypatch, tmp_path):  # noqa: F811
    from connectors.oura import OuraConfig
    from connectors.token_vault import TokenCipher
    from pipelines.cli import app
    from storage.tokens import DbTokenStore

    monkeypatch.setenv("EMBERWATCH_GOOGLE_CLIENT_ID", "google-client")
    monkeypatch.setenv("EMBERWATCH_GOOGLE_CLIENT_SECRET", "google-secret")
    watch = {"api_base": "http://127.0.0.1:8101", "authorize_url": "http://127.0.0.1:8101/auth",
             "token_url": "http://127.0.0.1:8101/token"}
    store.add_person("two", "two@example.org", "Europe/London", "google-health", watch)
    ring = {"api_base": "http://127.0.0.1:8202", "token_url": "http://127.0.0.1:8202/oauth/token"}
    assert add_source(store, "two", "oura", ring)
    tokens = DbTokenStore(store, TokenCipher())
    for source in ("google-health", "oura"):
        tokens.save("two", source, {"access_token": "a", "refresh_token": "r"}, ("sleep",), new_consent=True)
    synced = {s.name: s.config for s in sources_for(store.person("two"), store)}
    assert (synced["google-health"].api_base, synced["google-health"].token_url) == (watch["api_base"],
                                                                                     watch["token_url"])
    # The ring's own URLs, and for what it does not set the environment's, never the watch's.
    assert (synced["oura"].api_base, synced["oura"].token_url) == (ring["api_base"], ring["token_url"])
    assert synced["oura"].authorize_url == OuraConfig.from_env().authorize_url != watch["authorize_url"]

    # The operator sets a source's own URLs with `person add-source --endpoints`; a bad setting is refused plainly.
    monkeypatch.setenv("EMBERWATCH_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    assert runner.invoke(app, ["person", "add", "p9", "--email", "p9@example.org", "--timezone", "Europe/Oslo",
                               "--source", "google-health"]).exit_code == 0
    done = runner.invoke(app, ["person", "add-source", "p9", "--source", "oura", "--endpoints",
                               '{"api_base": "https://oura-proxy.example.org"}'])
    assert done.exit_code == 0, done.output
    assert "p9 now has oura (oura reaches its own api_base); their sources: google-health, oura." in done.output
    for bad, said in (('{"api_bass": "https://x"}', "'api_bass' is not a setting"), ("[1]", "a JSON object"),
                      ('{"token_url": "ftp://x"}', "token_url must be an http(s) URL")):
        refused = runner.invoke(app, ["person", "add-source", "p9", "--source", "oura", "--endpoints", bad])
        assert refused.exit_code != 0 and said in refused.output, refused.output
    with Store(tmp_path / "home" / "emberwatch.duckdb") as home:
        assert home.person("p9").config_for("oura") == {"api_base": "https://oura-proxy.example.org"}
        assert home.person("p9").config_for("google-health") == {}


def test_a_lost_ring_never_stops_the_watch_and_its_note_reconnects_the_ring(live_env, fake, tmp_path,
                                                                            monkeypatch):  # noqa: F811
    import email
    import email.policy
    import re

    from connectors.token_vault import TokenCipher
    from pipelines.settings import load_settings
    from storage.tokens import DbTokenStore
    from tests.smtp_server import free_port
    from tests.web_server import serve
    from web.app import create_app

    home, port = tmp_path / "home", free_port()
    for name, value in {"EMBERWATCH_HOME": str(home), "EMBERWATCH_LINK_KEY": "two-devices-link-key-0123456789",
                        "EMBERWATCH_PUBLIC_URL": f"http://127.0.0.1:{port}",
                        "EMBERWATCH_GOOGLE_CLIENT_ID": "google-client",
                        "EMBERWATCH_GOOGLE_CLIENT_SECRET": "google-secret"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("EMBERWATCH_SMTP_HOST", raising=False)
    settings = load_settings()
    with Store(settings.db_path) as store:
        store.add_person("two", "two@example.org", "Europe/London", "google-health")
        DbTokenStore(store, TokenCipher()).save("two", "google-health", {"access_token": "a", "refresh_token": "r"},
                                                ("sleep",), new_consent=True)
        add_source(store, "two", "oura", config(fake))
        enroll_person(store, "two", "oura", lambda url: requests.get(url, timeout=10), timeout_s=20)
        person = store.person("two")
        assert person.source == "google-health"  # connecting the ring second leaves the watch first
        ring = next(s for s in sources_for(person, store) if s.name == "oura")
    fake.revoke_refresh_tokens()
    fetched = steps.fetch_window(ring, PersonContext("two", "Europe/London"), date(2026, 10, 1), date(2026, 10, 1))
    for _ in range(2):  # the writer twice over the same outcome: one note
        with Store(settings.db_path) as store:
            assert set(steps.ingest(store, [fetched]).consent_lost) == {"two"}
    with Store(settings.db_path) as store:
        person = store.person("two")
        # The watch still counts: the person stays active (their notes go on) and only the watch syncs now.
        assert person.status == "active"
        assert [s.name for s in sources_for(person, store)] == ["google-health"]
        assert [r[0] for r in store.query_rows("SELECT kind FROM email_ledger WHERE person_id = 'two'")] \
            == ["reconnect-device"]
        # delivered at the opening of the person's window, to the outbox (no SMTP host set)
        week_on = datetime.now(timezone.utc) + timedelta(days=7)
        assert steps.deliver_until(store, steps.transport_for(settings), week_on).sent == 1
    [eml] = (home / "outbox").glob("*.eml")
    note = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text = note.get_body(("plain",)).get_content()
    assert note["Subject"] == "Please reconnect your Oura ring to emberwatch"
    assert "Your other device's nights still count meanwhile" in text
    connect = re.search(r"http://127\.0\.0\.1:\d+/me/\S+/connect\?source=oura", text)[0]
    my_page = connect.split("/connect")[0]

    def page_words() -> str:
        return " ".join(re.sub(r"<[^>]+>", " ", requests.get(my_page, timeout=30).text).split())

    with serve(create_app(settings), port=port):
        assert "Connect your Oura ring Which device counts" in page_words()  # the page offers the same
        answer = requests.get(connect, timeout=30)
        refused = requests.get(connect.replace("source=oura", "source=fitbit-web"), timeout=30)
        assert "Connect your Oura ring again or change what you share" in page_words()
    # the ring's own consent page (the fake Oura's), then back connected; a device not theirs is refused
    assert answer.status_code == 200 and answer.history[0].headers["Location"].startswith(fake.base_url)
    assert refused.status_code == 404 and "does not list" in refused.text
    with Store(settings.db_path) as store:
        person = store.person("two")
        assert person.source == "google-health" and person.status == "active"
        assert [s.name for s in sources_for(person, store)] == ["google-health", "oura"]


def test_two_devices_lost_in_one_run_are_both_acted_on(live_env, tmp_path, monkeypatch):  # noqa: F811
    from connectors.token_vault import ConsentRequired, TokenCipher
    from pipelines.ingest import Fetched
    from pipelines.settings import load_settings
    from storage.tokens import DbTokenStore

    monkeypatch.setenv("EMBERWATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EMBERWATCH_LINK_KEY", "two-lost-devices-link-key-0123456789")
    with Store(load_settings().db_path) as store:
        store.add_person("two", "two@example.org", "Europe/London", "google-health")
        add_source(store, "two", "oura")
        tokens = DbTokenStore(store, TokenCipher())
        for source in ("google-health", "oura"):
            tokens.save("two", source, {"access_token": "a", "refresh_token": "r"}, ("sleep",), new_consent=True)
        ctx = PersonContext("two", "Europe/London")
        steps.ingest(store, [Fetched(ctx, None, [], consent_lost=ConsentRequired("two", source, "revoked"))
                             for source in ("google-health", "oura")])
        # Both dead tokens are gone. The first loss left the ring, so it named the watch in a note; the second left
        # nothing, so the person waits for their reconnect note and nothing syncs meanwhile.
        assert [tokens.load("two", source) for source in ("google-health", "oura")] == [None, None]
        assert store.person("two").status == "needs_reconsent"
        assert sources_for(store.person("two"), store) == []
        assert sorted(r[0] for r in store.query_rows("SELECT kind FROM email_ledger WHERE person_id = 'two'")) \
            == ["reconnect", "reconnect-device"]


def test_the_demo_cohort_adds_an_apple_an_oura_and_a_switching_wearer_and_leaves_everyone_else_as_before():
    from connectors.records import NightlyHrv
    from connectors.synthetic import SyntheticCohort, record_civil_date

    plain = SyntheticCohort(n_people=4, n_nights=40, seed=3)
    worn = SyntheticCohort(n_people=4, n_nights=40, seed=3, device_wearers=True)
    assert [p.person_id for p in worn.people] == [f"c{k:02d}" for k in range(1, 8)]
    assert all(worn.records(p.person_id) == plain.records(p.person_id) for p in plain.people)
    apple, ring, switcher = (worn.records(f"c0{k}") for k in (5, 6, 7))
    assert {r.source for r in apple} == {"apple-health"}
    apple_hrv = [r for r in apple if isinstance(r, NightlyHrv)]
    assert apple_hrv and all(r.sdnn_ms and r.rmssd_ms is None for r in apple_hrv)  # SDNN, never RMSSD
    assert {r.source for r in ring} == {"oura"}
    switch = worn.first_night + timedelta(days=20)
    assert {r.source for r in switcher if record_civil_date(r) < switch} == {"fitbit-web"}
    assert {r.source for r in switcher if record_civil_date(r) >= switch} == {"oura"}


def test_the_demo_wearers_nights_travel_in_their_devices_shapes_and_parse_back_to_what_the_nights_say():
    """c13's nights arrive as Apple Health export.xml chunks, c14's and c15's second half as Oura API v2 documents;
    each is read by that device's own parser, and the rows are the synthetic nights (as the device delivers them)."""
    import json
    import zlib

    from lxml import etree

    from connectors.oura import PHASE_S
    from connectors.records import SleepSession, SleepStage
    from connectors.synthetic import SyntheticCohort, SyntheticSource, record_civil_date

    cohort = SyntheticCohort(device_wearers=True)  # the demo's cohort
    source = SyntheticSource(cohort)
    first, last = cohort.nights[0], cohort.nights[-1]
    switch = first + timedelta(days=cohort.n_nights // 2)

    def fetched(person_id: str, start: date = first, end: date = last):
        person = PersonContext(person_id, cohort.person(person_id).tz_name)
        raws = list(source.fetch(person, start, end))
        return raws, [r for raw in raws for r in source.parse(raw, person).records], person

    def key(record):
        return type(record).__name__, record_civil_date(record), getattr(record, "start_utc", None)

    # c13: the Apple Watch. One chunk per data type and month, zlib-compressed <Record> XML, as the importer archives.
    raws, parsed, person = fetched("c13")
    assert {raw.source for raw in raws} == {"apple-health"}
    assert {raw.resource.split("/")[0] for raw in raws} == {"sleep", "resting_hr", "vitals", "steps", "hrv_sdnn"}
    types = {element.get("type") for raw in raws for element in etree.fromstring(zlib.decompress(raw.body))}
    assert types == {"HKCategoryTypeIdentifierSleepAnalysis", "HKQuantityTypeIdentifierRestingHeartRate",
                     "HKQuantityTypeIdentifierRespiratoryRate", "HKQuantityTypeIdentifierOxygenSaturation",
                     "HKQuantityTypeIdentifierStepCount", "HKQuantityTypeIdentifierHeartRateVariabilitySDNN"}
    want = {key(r): r for r in cohort.records("c13")}
    got = {key(r): r for r in parsed}
    assert got.keys() == want.keys() and len(parsed) == len(want)
    for k, record in want.items():
        if isinstance(record, SleepSession):
            # Apple has no "restless": those minutes are unstaged asleep; its own session ids
            restless_as_asleep = tuple(s.model_copy(update={"stage": SleepStage.ASLEEP})
                                       if s.stage == SleepStage.RESTLESS else s for s in record.segments)
            record = record.model_copy(update={"segments": restless_as_asleep,
                                               "source_session_id": got[k].source_session_id})
        assert got[k] == record, k

    # c14: the Oura ring; c15: a Fitbit (the synthetic JSON) then the ring from half-way.
    for person_id in ("c14", "c15"):
        raws, parsed, person = fetched(person_id)
        ring = [raw for raw in raws if raw.source == "oura"]
        assert [raw.resource for raw in ring] == ["night", "activity"]
        night, activity = ({name: [json.loads(page) for page in pages] for name, pages in json.loads(raw.body).items()}
                           for raw in ring)
        assert set(night) == {"sleep", "daily_readiness", "daily_spo2"} and set(activity) == {"daily_activity"}
        periods = night["sleep"][0]["data"]
        assert periods and all({"bedtime_start", "bedtime_end", "sleep_phase_5_min", "type"} <= set(p) for p in periods)
        assert {p["type"] for p in periods} == {"long_sleep", "sleep"}
        assert any(p["average_hrv"] and p["lowest_heart_rate"] and p["average_breath"] for p in periods)
        assert night["daily_readiness"][0]["data"][0]["temperature_deviation"] is not None
        assert night["daily_spo2"][0]["data"][0]["spo2_percentage"]["average"] > 80
        assert activity["daily_activity"][0]["data"][0]["steps"] >= 0
        want = {key(r): r for r in cohort.records(person_id)}
        got = {key(r): r for r in parsed}
        assert got.keys() == want.keys() and len(parsed) == len(want)
        assert {r.source for r in parsed if record_civil_date(r) >= switch} == {"oura"}
        for k, record in want.items():
            if not (isinstance(record, SleepSession) and record.source == "oura"):
                assert got[k] == record, k
                continue
            session = got[k]
            # Oura's own totals carry the minutes exactly; the ring gives the person's zone and stages everything
            same = ("night_date", "start_utc", "end_utc", "is_main_sleep", "minutes_asleep", "minutes_awake",
                    "minutes_to_fall_asleep", "time_in_bed_min", "source_session_id")
            assert all(getattr(session, f) == getattr(record, f) for f in same), k
            assert session.tz_name == person.tz_name and session.log_type == "stages"
            # Stages in five-minute phases: each is the synthetic stage at the middle of its five minutes.
            total = int((record.end_utc - record.start_utc).total_seconds())
            assert sum(s.duration_s for s in session.segments) == total
            def stage_at(segments, instant):
                return next(x.stage for x in segments
                            if x.start_utc <= instant < x.start_utc + timedelta(seconds=x.duration_s))

            for offset in range(0, total, PHASE_S):
                middle = record.start_utc + timedelta(seconds=offset + min(PHASE_S, total - offset) // 2)
                synthetic = stage_at(record.segments, middle)
                expected = {SleepStage.ASLEEP: SleepStage.LIGHT, SleepStage.RESTLESS: SleepStage.LIGHT,
                            SleepStage.AWAKE: SleepStage.WAKE}.get(synthetic, synthetic)
                assert stage_at(session.segments, middle) == expected, (k, offset)

    # A nightly window across c15's switch: the Fitbit night as synthetic JSON, the ring's as Oura documents.
    raws, parsed, _ = fetched("c15", switch - timedelta(days=1), switch)
    assert [(raw.source, raw.resource) for raw in raws] == [("synthetic", "nights"), ("oura", "night"),
                                                            ("oura", "activity")]
    assert {(r.source, record_civil_date(r)) for r in parsed} == {("fitbit-web", switch - timedelta(days=1)),
                                                                  ("oura", switch)}
