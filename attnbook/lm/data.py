"""The chapter's own sentences: varied length and syntax, with commas and periods.

Written for this book (no data set to download); the first ``n`` are used by a profile.
"""

from __future__ import annotations

from .. import checks

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


#: (a corpus sentence, a paraphrase of it written for this book): the labelled pairs of the chapter's
#: similarity task; sentence ``i`` with paraphrase ``j ≠ i`` is an unrelated pair
PARAPHRASES: tuple[tuple[str, str], ...] = (
    (SENTENCES[0], "Every night the aging keeper of the lighthouse went up the steps, even if the water was still."),
    (SENTENCES[1], "She made the tea, unsealed the envelope and read the letter two times before she spoke."),
    (SENTENCES[2], "With attention, each word of a sentence can look at all of the other words."),
    (SENTENCES[3], "Once the storm had passed, the fishermen counted the boats and discovered one had gone."),
    (SENTENCES[4], "Every spring I get a postcard from my brother, who lives in Lisbon."),
    (SENTENCES[5], "Because two of its members were sick, the committee delayed the vote."),
    (SENTENCES[6], "The postman ignored a little dog barking at him and kept walking."),
    (SENTENCES[7], "By the time the train came at last, hardly anyone was left on the platform."),
    (SENTENCES[8], "Lunch was just bread, cheese and some wine, and it was perfect."),
    (SENTENCES[9], "The students only saw the loose cable after the experiment had failed three times."),
    (SENTENCES[10], "Ice that is warmed slowly stays at zero degrees until all of it has melted."),
    (SENTENCES[11], "Since the museum shut early, we took a walk by the river."),
    (SENTENCES[12], "No one thought the shy student would win the debate, yet she won."),
    (SENTENCES[13], "The oldest maps of the library are stored in a dark, cold room under the street."),
    (SENTENCES[14], "With a spoon, a shoelace and lots of patience, he fixed the bike."),
    (SENTENCES[15], "The birds in the park are mostly pigeons, but a heron comes by in the mornings."),
)


def paraphrase_pairs(n: int) -> list[tuple[str, str]]:
    """The first ``n`` (sentence, paraphrase) pairs of :data:`PARAPHRASES`."""
    n = checks.integer("n", n, minimum=2, maximum=len(PARAPHRASES))
    return list(PARAPHRASES[:n])


def sentences(n: int) -> list[str]:
    """The first ``n`` sentences of the chapter corpus."""
    n = checks.integer("n", n, minimum=1, maximum=len(SENTENCES))
    return list(SENTENCES[:n])
