"""The chapter's own text, written for this book (no data set to download).

* :func:`role_items` — the **role task** the chapter's findings and ablations read since issue 30:
  generated offline from word lists, seeded. Each item is one source sentence and two candidates made
  of exactly the same tokens, one saying the same thing and one swapping who did what to whom
  (:class:`RoleItem`); an encoder that reads word order puts the first nearer the source.
  :func:`split_items` halves the items into a selection and a test split.
* :data:`SENTENCES` — hand-written sentences of varied length and syntax (:func:`sentences`), for the
  examples and explorers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .. import checks
from ..errors import InvalidInputError, bad_argument

SENTENCES: tuple[str, ...] = (
    "The old lighthouse keeper climbed the stairs every evening, even when the sea was calm.",
    "She poured the tea, opened the letter, and read it twice before saying a word.",
    "Attention lets every word in a sentence look at every other word.",
    "After the storm, the fishermen counted their boats and found that one was missing.",
    "My brother, who lives in Lisbon, sends me a postcard every spring.",
    "The committee postponed the vote because two members were ill.",
    "A small dog barked at the mailman, who ignored it and walked on.",
    "When the train finally arrived, the platform was nearly empty.",
    "Bread, cheese and a little wine made a simple but perfect lunch.",
    "The experiment failed three times before the students noticed the loose cable.",
    "If you heat ice slowly, its temperature stays at zero until it has melted.",
    "The museum closed early, so we walked along the river instead.",
    "Nobody expected the quiet student to win the debate, but she did.",
    "The library keeps its oldest maps in a cold, dark room below the street.",
    "He repaired the bicycle with a spoon, a shoelace and a great deal of patience.",
    "Most birds in the park are pigeons, although a heron visits in the morning.",
    "The recipe asks for two eggs, a cup of flour and a pinch of salt.",
    "Because the bridge was closed, the bus took a long detour through the hills.",
    "The painter mixed blue and yellow until the green looked like wet grass.",
    "Our neighbour plays the piano at night, and nobody on the street complains.",
    "The new model learned to translate simple sentences after a week of training.",
    "Rain fell on the tin roof all night, and the children slept soundly.",
    "The map was wrong, the compass was broken, and the guide had gone home.",
    "A good teacher explains an idea once, then asks the class to explain it back.",
    "The price of coffee rose sharply after the harvest failed in two countries.",
    "They planted tomatoes in May, but the first frost came early that year.",
    "The cat slept on the warm laptop while its owner tried to finish a report.",
    "During the concert, a phone rang, and the violinist stopped playing.",
    "The village has one shop, one school and a church with a crooked tower.",
    "Scientists measured the glacier again and found it had shrunk by ten metres.",
    "Please close the window, because the wind is blowing the papers off the desk.",
    "The detective noticed that the clock in the hall had stopped at midnight.",
    "Grandmother kept every button she had ever found in a biscuit tin.",
    "The river flooded the lower fields, yet the farmhouse on the hill stayed dry.",
    "A stranger asked for directions to the station, and we walked him there.",
    "The software update fixed one bug and quietly introduced two more.",
    "Every morning the baker arrives at four, long before the town wakes up.",
    "The goalkeeper saved the penalty, and the crowd rushed onto the field.",
    "Her first novel was rejected nine times before a small press accepted it.",
    "The hikers reached the summit at noon, ate their sandwiches and turned back.",
    "Light from the nearest star takes more than four years to reach us.",
    "The kettle whistled, the toast burned, and the smoke alarm joined in.",
    "He forgot his umbrella on the bus, so he arrived at the interview soaking wet.",
    "The orchestra tuned their instruments while the audience found their seats.",
    "Children learn new words fastest when they hear them in many different sentences.",
    "The ferry leaves every hour, except on Sundays, when it does not run at all.",
    "A thin layer of snow covered the garden, and the footprints of a fox crossed it.",
    "The engineer checked the numbers twice, then signed the report and went home.",
    "Our team lost the first game, won the second, and drew the third.",
    "The market sells fish in the morning and flowers in the afternoon.",
    "When the lights went out, everyone in the room started laughing.",
    "The professor wrote a single equation on the board and waited for questions.",
    "Two cyclists stopped at the fountain, filled their bottles and rode on.",
    "The castle walls are thick, but the wind still whistles through the cracks.",
    "She learned Japanese by reading comics, watching films and talking to friends.",
    "The harbour lights blinked on one by one as the ship came in.",
    "A careful reader notices what a sentence leaves out, not only what it says.",
    "The garden looked wild, yet every plant in it had been placed on purpose.",
    "The printer jammed, so the students copied the notes by hand.",
    "Fresh snow absorbs sound, which is why a winter forest feels so quiet.",
    "The pilot announced a delay, and the passengers sighed in unison.",
    "Our grandfather's watch still runs, although it loses a minute every day.",
    "The bees left the hive at dawn and returned heavy with pollen.",
    "In the end, the simplest explanation turned out to be the right one.",
)


#: the people of the role task (one word-piece each in MiniLM's vocabulary)
PEOPLE: tuple[str, ...] = (
    "teacher", "doctor", "farmer", "lawyer", "pilot", "baker", "student", "nurse", "soldier", "painter", "singer", "driver", "waiter",
    "banker", "sailor", "judge", "writer", "dancer", "chef", "guard", "boxer", "priest", "tailor", "clerk", "miner", "hunter", "artist",
    "coach", "actor", "poet", "king", "queen", "girl", "boy", "woman", "man", "child", "officer", "captain", "neighbour",
)
#: transitive verbs, past tense: who did it to whom is carried by word order alone
VERBS: tuple[str, ...] = (
    "praised", "helped", "hit", "called", "followed", "chased", "thanked", "blamed", "hired", "visited", "kissed", "fought", "taught",
    "warned", "saved", "ignored", "insulted", "paid", "met", "pushed", "greeted", "trusted", "feared", "loved", "hated", "admired",
    "watched", "invited", "attacked", "interviewed",
)
#: where or when it happened: the phrase that moves to the front in the candidates
SETTINGS: tuple[str, ...] = (
    "in the garden", "at the station", "near the river", "after lunch", "in the morning", "at the market", "on the bridge",
    "in the library", "before dinner", "at the party", "in the hospital", "on the train", "during the long meeting",
    "outside the old church", "after the football match", "at the end of the day", "in the small village",
)


@dataclass(frozen=True)
class RoleItem:
    """One item of the role task, made from one source sentence ``The A V the B S.``: the ``correct``
    candidate says the same with the setting moved to the front (``S, the A V the B.``), the
    ``distractor`` swaps who did what to whom (``S, the B V the A.``). Both candidates are made of the
    same tokens — the same multiset, only the order differs — so a bag-of-words comparison with the
    source ties exactly; only word order tells them apart."""

    source: str
    correct: str
    distractor: str
    agent: str
    patient: str
    verb: str
    setting: str


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def role_items(n: int, seed: int = 0) -> list[RoleItem]:
    """``n`` items of the role task (:class:`RoleItem`), generated from :data:`PEOPLE`, :data:`VERBS` and
    :data:`SETTINGS` with a seeded ``random.Random``: two different people, a verb and a setting per
    item. No two items share a source sentence, nor the same two people (in either role) with the same
    verb and setting, so the items are independent units and no item's role swap is another item's source."""
    n = checks.integer("n", n, minimum=2, maximum=10_000)
    rng = random.Random(seed)
    seen: set[tuple] = set()
    out: list[RoleItem] = []
    while len(out) < n:
        a, b = rng.sample(PEOPLE, 2)
        verb, setting = rng.choice(VERBS), rng.choice(SETTINGS)
        key = (frozenset((a, b)), verb, setting)
        if key in seen:
            continue
        seen.add(key)
        front = _sentence(setting)
        out.append(RoleItem(f"The {a} {verb} the {b} {setting}.", f"{front}, the {a} {verb} the {b}.", f"{front}, the {b} {verb} the {a}.",
                            a, b, verb, setting))
    return out


def split_items(items: Sequence[RoleItem]) -> tuple[list[RoleItem], list[RoleItem]]:
    """(selection, test): the first half of ``items`` (heads are chosen there) and the rest (they are
    tested there). Every item has its own source sentence, so the splits share none."""
    items = list(items)
    if len(items) < 4:
        raise bad_argument(InvalidInputError, "items", "at least 4 items (2 per split)", len(items))
    half = len(items) // 2
    return items[:half], items[half:]


def sentences(n: int) -> list[str]:
    """The first ``n`` sentences of the chapter corpus."""
    n = checks.integer("n", n, minimum=1, maximum=len(SENTENCES))
    return list(SENTENCES[:n])
