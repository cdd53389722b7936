"""Word lists and sentence templates of the cooking-qa example (data only, no logic).

Templates use ``{slot}`` placeholders. A slot is looked up first in the text's context
(``dish`` is fixed per text so one answer talks about one dish), then in the topic's own
lists, then in :data:`COMMON`. Causes are noun phrases ("overmixing the batter"), fixes
are imperative verb phrases ("spoon the flour into the cup") so they fit many frames.
"""

from __future__ import annotations

TOPICS = (
    "baking", "grilling", "food_safety", "technique", "ingredients", "equipment", "nutrition",
)

COMMON: dict[str, list[str]] = {
    "when": [
        "Last weekend", "A few months ago", "Over the holidays", "Yesterday", "Back in the spring",
        "Last Thanksgiving", "On Friday night", "Two summers ago", "Earlier this week",
        "When I first moved out", "During my first year cooking on a line",
        "For my sister's engagement party",
    ],
    "audience": [
        "my in-laws", "a dinner party of eight", "my kid's soccer team", "our neighbors",
        "a work potluck", "my partner's birthday", "a family reunion", "a Sunday brunch crowd",
        "a church fundraiser", "my book club", "twelve hungry teenagers", "my roommates",
    ],
    "outcome": [
        "nobody could tell the difference", "it disappeared in about ten minutes",
        "I finally understood why the recipe insists on it", "it came out better than the "
        "restaurant version", "I had to start over from scratch", "everyone asked for the recipe",
        "the leftovers were gone by breakfast", "my father-in-law went back for thirds",
        "it was the first time I was happy with the result", "we ended up ordering pizza",
        "it held up beautifully even after sitting out for an hour",
        "I have made it that way ever since",
    ],
    "nth": ["second", "third", "fourth", "fifth", "sixth"],
    "minutes": ["5", "8", "10", "12", "15", "20", "25", "30", "40", "45"],
    "hours": ["two hours", "four hours", "overnight", "a full day", "six hours", "an hour"],
    "days": ["two days", "three days", "four days", "a week", "five days"],
    "temp_f": ["325°F", "350°F", "375°F", "400°F", "425°F", "450°F"],
    "kitchen": ["warm", "cold", "drafty", "humid", "tiny", "very dry"],
    "stove": ["gas", "electric coil", "induction", "glass-top electric"],
    "source": [
        "a cookbook from the library", "my grandmother's recipe card", "a popular food blog",
        "the back of the flour bag", "a video I found", "a community college class",
        "an old church cookbook", "a recipe a coworker shared",
    ],
}

# Generic frames around the topic-specific content.
OPENERS = [
    "Good question.", "I ran into the same thing for years.",
    "Short answer: yes, with a couple of caveats.", "This comes up a lot in cooking classes.",
    "From what I've seen working in restaurant kitchens, it's rarely one single thing.",
    "I used to struggle with this too.", "There are a few things going on here.",
    "Happy to help with this one.", "My honest take after a lot of trial and error:",
    "It depends a little on your setup, but here is what usually works.",
    "I teach a weekend cooking class and this is one of the first questions people ask.",
    "Nothing wrong with asking, plenty of experienced cooks get this wrong.",
]
CLOSERS = [
    "Hope that helps!", "Good luck, and report back on how it goes.",
    "Once you get the hang of it, it becomes second nature.",
    "Trust your senses more than the timer.",
    "Take notes each time so you can repeat what worked.",
    "Don't be discouraged, the second attempt is always better.",
    "Small changes, one at a time, are the fastest way to figure it out.",
    "Enjoy, and don't forget to taste as you go.",
    "If it still gives you trouble, post a photo and we can take a look.",
]
CAUSE_FRAMES = [
    "Nine times out of ten the problem is {cause}.",
    "It usually comes down to {cause}.",
    "The most common culprit is {cause}.",
    "My first guess would be {cause}.",
    "In my experience the trouble starts with {cause}.",
    "Look closely at {cause}, because that is where most people slip up.",
]
FIX_FRAMES = [
    "Try to {fix}.", "My advice is to {fix}.", "What helped me was learning to {fix}.",
    "Next time, {fix}.", "The simplest fix is to {fix}.", "Before anything else, {fix}.",
    "A trick I picked up from {source} is to {fix}.",
    "If you change only one thing, {fix}.",
]
TRIED_FRAMES = [
    "I already tried to {fix}, but it didn't make much difference.",
    "Someone told me to {fix}, and that helped a little.",
    "I followed {source} exactly.",
    "My kitchen is pretty {kitchen}, if that matters.",
    "I cook on a {stove} stove.",
    "This is my {nth} attempt this month.",
]
ANECDOTES = [
    "{when} I made {dish} for {audience} and {outcome}.",
    "{when} I tried this with {dish} for {audience}, and {outcome}.",
    "The first time I cooked {dish} this way was for {audience}; {outcome}.",
]
TIP_PREFIXES = [
    "Tip:", "Quick tip:", "Kitchen tip:", "Something I wish I had known sooner:",
    "A small habit that changed my cooking:", "Lesson learned the hard way:", "PSA:",
]

TOPIC_DATA: dict[str, dict[str, list[str]]] = {
    "baking": {
        "dish": [
            "sourdough loaf", "banana bread", "chocolate chip cookies", "pie crust", "brioche",
            "focaccia", "lemon bars", "carrot cake", "cinnamon rolls", "scones", "pound cake",
            "bagels", "croissants", "brownies", "apple galette", "pizza dough", "angel food cake",
            "shortbread", "dinner rolls", "cheesecake", "blueberry muffins", "baguettes",
            "pavlova", "buttermilk biscuits", "sandwich bread", "oatmeal cookies",
        ],
        "problem": [
            "dense", "gummy in the middle", "dry", "flat", "pale on top", "burnt on the bottom",
            "crumbly", "tough", "soggy underneath", "cracked on top", "lopsided", "greasy",
        ],
        "cause": [
            "overmixing the batter once the flour goes in",
            "measuring flour by scooping straight from the bag",
            "an oven that runs hotter than the dial says", "baking powder that has lost its lift",
            "butter that was too warm when it went in", "underproofed dough",
            "opening the oven door too early", "too much liquid for the flour you are using",
            "a dark metal pan that absorbs heat quickly", "skipping the rest in the fridge",
            "cold eggs straight from the refrigerator", "slicing it before it has cooled",
        ],
        "fix": [
            "spoon the flour into the cup and level it with a knife",
            "put an oven thermometer on the middle rack and trust it over the dial",
            "test your baking powder in hot water before you start",
            "chill the shaped dough for half an hour before it goes in",
            "drop the temperature by 25°F and bake a little longer",
            "fold the dry ingredients in by hand with a spatula",
            "weigh everything on a cheap digital scale",
            "let the butter sit out until it dents easily but still feels cool",
            "bake on the middle rack with a sheet pan underneath",
            "let it cool completely on a wire rack before slicing",
        ],
        "liquid": ["milk", "cream", "water"],
        "weather": ["rainy", "muggy", "sticky August"],
        "age": ["six months", "a year", "nine months"],
        "deg": ["15", "20", "25", "30"],
        "bread_temp": ["190°F", "195°F", "200°F"],
        "questions": [
            "Every time I bake {dish}, the result is {problem}. Why?",
            "How do I keep my {dish} from turning out {problem}?",
            "Can I use all-purpose flour instead of bread flour for {dish}?",
            "What oven temperature should I use for {dish} in a glass pan?",
            "My {dish} sank in the middle after I took the pan out of the oven. What went wrong?",
            "Is it worth weighing ingredients for {dish}, or are measuring cups good enough?",
            "How long should I let {dish} dough rise when my kitchen is {kitchen}?",
            "Do I really need to chill the dough for {dish}?",
            "How can I check doneness on {dish} without cutting into it?",
            "Can I cut the sugar in {dish} by a third without ruining the texture?",
            "Why is my {dish} {problem} even though I follow the recipe exactly?",
        ],
        "facts": [
            "Weighing flour instead of using cups removes the biggest source of error, since a "
            "scooped cup can hold anywhere from 120 to 150 grams.",
            "Most ovens are off by {deg} degrees or more, so an inexpensive oven thermometer pays "
            "for itself after one ruined batch of {dish}.",
            "Butter for creaming should be around 65°F: cool to the touch but soft enough to dent "
            "with a finger.",
            "If your baking soda is older than {age}, stir a spoonful into vinegar; no fizz means "
            "it is time to replace it.",
            "Let cakes and quick breads cool in the pan for {minutes} minutes before turning them "
            "out, or they may tear.",
            "A tablespoon of cornstarch per cup of flour gives a more tender crumb, which is handy "
            "when you only have all-purpose flour.",
            "Rotating the pan halfway through baking evens out the hot spots most home ovens have "
            "near the back wall.",
            "For yeast doughs the poke test beats the clock: a dent should spring back slowly and "
            "only partway.",
            "Brushing the top with a whole egg beaten with a splash of {liquid} gives a deep, "
            "glossy color.",
            "Bread flour has more protein than all-purpose, so it builds more gluten and gives a "
            "chewier result.",
            "Humidity matters more than people think; on a {weather} day you may need a few extra "
            "tablespoons of flour.",
            "An internal temperature of {bread_temp} tells you an enriched loaf is done, even if "
            "the crust still looks pale.",
            "Chilling cookie dough for {hours} lets the flour hydrate and deepens the flavor.",
            "Dark metal pans bake faster than glass or light aluminum, so start checking {minutes} "
            "minutes early.",
            "Salt does more than season a dough; it tightens the gluten and slows fermentation a "
            "little.",
            "A round of parchment on the bottom of the pan is cheap insurance against sticking.",
            "To fold, cut down through the center with a wide spatula, then sweep up along the "
            "side of the bowl while turning it.",
            "Reducing sugar by more than about a quarter changes texture as well as sweetness, "
            "because sugar holds on to moisture.",
            "Steam during the first {minutes} minutes keeps the crust flexible so the loaf can "
            "fully expand.",
            "A pan of boiling water on the lowest rack adds steam if you do not own a Dutch oven.",
            "Room temperature eggs blend into batter evenly and help trap air while creaming.",
            "Sift cocoa powder, or it leaves little dry pockets in the batter.",
            "A toothpick inserted near the center should come out with a few moist crumbs, not "
            "wet batter.",
            "Frozen grated butter is the easiest way to get flaky layers in biscuits and scones.",
        ],
    },
    "grilling": {
        "dish": [
            "ribeye", "pork shoulder", "chicken thighs", "burgers", "salmon fillets",
            "corn on the cob", "brisket", "baby back ribs", "skirt steak", "lamb chops",
            "shrimp skewers", "bratwurst", "portobello mushrooms", "halloumi", "flank steak",
            "turkey breast", "zucchini planks", "pineapple rings", "tri-tip",
            "spatchcocked chicken",
            "pork chops", "swordfish steaks",
        ],
        "problem": [
            "charred outside and raw inside", "dry", "stuck to the grates", "rubbery",
            "bitter and sooty", "pale with no crust", "tough and chewy", "falling apart",
        ],
        "cause": [
            "grilling over direct heat the whole time", "grates that were not hot enough",
            "a marinade with too much sugar", "flipping the meat every thirty seconds",
            "pressing down on the burgers with the spatula", "cooking straight from the fridge",
            "skipping the rest after it comes off the grill", "dirty grates with old residue",
            "lighter fluid that had not burned off", "cutting with the grain instead of across it",
            "a lid that stayed open and let the heat escape",
        ],
        "fix": [
            "set up a two-zone fire with coals piled on one side",
            "preheat the grates for a good fifteen minutes with the lid closed",
            "brush sugary glazes on only during the last few minutes",
            "flip once and leave it alone until it releases on its own",
            "use a probe thermometer instead of guessing by color",
            "oil the food rather than the grates",
            "let the meat rest under loose foil before slicing",
            "use a chimney starter instead of lighter fluid",
            "slice thinly against the grain",
            "pat the surface completely dry before it goes on",
        ],
        "wood": ["hickory", "applewood", "cherry", "mesquite", "oak", "pecan"],
        "meat_temp": ["125°F for medium-rare", "135°F for medium", "165°F in the thickest part",
                      "145°F followed by a rest", "203°F for pulled pork"],
        "questions": [
            "How do I keep my {dish} from coming out {problem}?",
            "Gas or charcoal for {dish}, and does it really matter?",
            "Why does everything I grill, especially {dish}, come out {problem}?",
            "What's the right internal temperature for {dish} on the grill?",
            "Should I use {wood} chips for smoking {dish}?",
            "How long should {dish} rest after grilling?",
            "Is it worth brining {dish} before grilling?",
            "How do you grill {dish} on a windy day without the fire dying?",
            "Can I cook {dish} on a gas grill with the lid open?",
            "What is the best marinade timing for {dish}?",
        ],
        "facts": [
            "A two-zone fire lets you sear over the coals and then finish gently on the cooler "
            "side, which solves most burnt-outside raw-inside problems.",
            "Pull the meat about five degrees before your target, because the temperature keeps "
            "climbing while it rests.",
            "Aim for {meat_temp}; an instant-read thermometer is more useful than any timer.",
            "{wood} gives a noticeable smoke flavor, so a small handful is plenty for {dish}.",
            "Soaking wood chips mostly makes steam; dry chunks in a foil pouch smoke more cleanly.",
            "Oil the food rather than the grates, or the oil just burns off before anything lands.",
            "A dry brine of salt for {hours} seasons the meat all the way through and dries the "
            "surface for a better crust.",
            "Keep the lid closed as much as you can; every peek costs you heat and adds minutes.",
            "Grill marks look nice but an even, deep brown crust has more flavor.",
            "Thin marinades with acid start to make the surface mushy after a few hours, so do not "
            "leave fish in them overnight.",
            "Let {dish} rest for {minutes} minutes under loose foil so the juices settle.",
            "Clean grates while they are hot; a ball of crumpled foil works if you lost the "
            "brush.",
            "Wind steals heat fast, so angle the grill and keep the vents on the sheltered side.",
            "Wait until the coals are covered in a thin layer of gray ash before you start "
            "cooking.",
            "A spray bottle of water is handy for small flare-ups, but move the food to the cool "
            "side first.",
            "Skewer shrimp on two parallel sticks so they do not spin when you flip them.",
            "For {dish}, a thicker cut is more forgiving because it has more time to build a "
            "crust.",
            "Sugar in a rub burns above about 350°F, so save sweet rubs for low and slow cooking.",
            "Keep a separate clean plate for cooked food so it never touches the raw juices.",
            "Vegetables like corn and peppers can go directly on the coals for a smoky char.",
            "Indirect heat at around 250°F with the lid closed turns the grill into a simple "
            "smoker.",
        ],
    },
    "food_safety": {
        "dish": [
            "leftover rice", "cooked chicken", "potato salad", "homemade mayonnaise",
            "canned tomatoes", "raw oysters", "deli meat", "soft cheese", "sushi rice",
            "thawed shrimp", "bone broth", "hard-boiled eggs", "garlic in oil", "cut melon",
            "ground beef", "turkey stuffing", "marinated tofu", "cream pie", "cooked pasta",
            "homemade salsa",
        ],
        "problem": [
            "left out overnight", "smelling a little off", "past the date on the package",
            "thawed on the counter", "kept in the fridge for a week", "frozen for over a year",
            "sitting in a warm car for two hours", "refrozen after thawing",
        ],
        "cause": [
            "food sitting in the danger zone between 40°F and 140°F",
            "cooling a big pot of food too slowly", "a fridge that runs warmer than you think",
            "cross-contamination from a cutting board used for raw meat",
            "thawing on the counter instead of in the fridge", "reheating the same dish repeatedly",
            "washing raw chicken in the sink", "tasting from the spoon you stir with",
            "overfilling the refrigerator so cold air cannot circulate",
        ],
        "fix": [
            "get leftovers into the fridge within two hours of cooking",
            "divide large batches into shallow containers so they cool fast",
            "keep a fridge thermometer on the middle shelf and check it weekly",
            "use separate cutting boards for raw meat and produce",
            "thaw meat on a plate on the bottom shelf of the fridge",
            "reheat leftovers to 165°F all the way through",
            "label containers with the date you cooked them",
            "throw it out when in doubt",
            "wash your hands for twenty seconds after handling raw meat",
        ],
        "storage": ["three to four days", "up to a week", "two to three months",
                    "one to two days"],
        "anecdotes": [
            "{when} a tray of {dish} sat out too long while I cooked for {audience}; I threw it "
            "away and never regretted it.",
            "{when} a friend got sick after a picnic with {audience}, and since then I watch the "
            "clock with {dish}.",
            "{when} I had to explain this to {audience} while we packed up {dish}, and it "
            "changed how they store leftovers.",
        ],
        "questions": [
            "Is it safe to eat {dish} that was {problem}?",
            "How long will {dish} keep in the fridge?",
            "Can I refreeze {dish} after it has thawed?",
            "My {dish} was {problem}. Should I throw it out?",
            "What's the safest way to thaw {dish}?",
            "Does reheating {dish} kill everything that might have grown on it?",
            "Is the smell test reliable for {dish}?",
            "How should I store {dish} for a picnic?",
            "Can I leave {dish} out for a party buffet, and for how long?",
        ],
        "facts": [
            "The two-hour rule is a good default: perishable food should not sit between 40°F and "
            "140°F for longer than that, or one hour on a hot day.",
            "Cooked leftovers generally keep {storage} in a fridge that holds 40°F or below.",
            "Some bacteria, like the ones behind rice poisoning, make toxins that reheating does "
            "not destroy.",
            "Smell and look are not reliable; many of the bacteria that make people sick do not "
            "change how food smells.",
            "Thawing in cold water works if you change the water every thirty minutes and cook "
            "the food right away.",
            "Food thawed in the fridge can be refrozen, although the texture may suffer a little.",
            "Garlic stored in oil at room temperature is a botulism risk, so keep it refrigerated "
            "and use it within {days}.",
            "Washing raw chicken spreads droplets around the sink; cooking it properly is what "
            "makes it safe.",
            "A large pot of soup can stay warm in the middle for hours, so split it into shallow "
            "containers before refrigerating.",
            "Freezing stops bacteria from growing but does not kill them, so thawed food spoils "
            "at the usual rate.",
            "Dates on packages are mostly about quality, except for infant formula, but "
            "use-by dates on deli meat are worth respecting.",
            "Pregnant people are usually advised to skip unpasteurized soft cheeses and cold deli "
            "meat because of listeria.",
            "Keep cold foods in a cooler with ice packs and out of the sun, and pack drinks in a "
            "separate cooler so the food one stays closed.",
            "Canned goods with bulging lids, deep dents on the seam or spurting liquid should go "
            "straight into the trash.",
            "Ground meat needs to reach 160°F because grinding mixes surface bacteria all the way "
            "through.",
            "Sponges are one of the dirtiest things in a kitchen; microwave a damp one or replace "
            "it every week or two.",
            "When a buffet runs for hours, swap out serving dishes every {minutes} minutes instead "
            "of topping them up.",
            "Label leftovers with the cooking date, since memory is terrible at tracking how old "
            "something is.",
            "A fridge packed wall to wall blocks airflow, and the back shelves can end up several "
            "degrees warmer than the front.",
        ],
    },
    "technique": {
        "dish": [
            "risotto", "pan sauce", "hollandaise", "braised short ribs", "stir-fry",
            "poached eggs", "caramel", "béchamel", "seared scallops", "French omelettes",
            "roux", "mashed potatoes", "pan-fried dumplings", "duck confit", "chicken stock",
            "roasted vegetables", "fried rice", "beurre blanc", "vanilla custard", "gnocchi",
            "crispy tofu", "caramelized onions",
        ],
        "problem": [
            "broken and greasy", "gluey", "watery", "lumpy", "scorched", "bland", "rubbery",
            "soggy instead of crisp", "grainy", "stuck to the pan",
        ],
        "cause": [
            "a pan that was not hot enough when the food went in",
            "crowding too much food into the pan at once", "adding liquid that was too cold",
            "stirring constantly when it needs to be left alone",
            "heat that was too high for an emulsion", "not salting at each stage",
            "moving the food before it had a chance to release",
            "cutting pieces in uneven sizes", "skipping the step of patting everything dry",
            "rushing the reduction",
        ],
        "fix": [
            "preheat the pan until a drop of water skitters across it",
            "cook in two or three batches instead of one crowded one",
            "warm the stock in a separate pot before adding it",
            "take the pan off the heat while you whisk in the butter",
            "cut everything to roughly the same size",
            "season in small amounts as you go and taste each time",
            "pat the surface dry with paper towels",
            "let the pan do the work and resist poking at it",
            "reduce the liquid until it coats the back of a spoon",
            "rest the finished dish for a few minutes before serving",
        ],
        "fat": ["butter", "olive oil", "ghee", "neutral oil", "bacon fat", "duck fat"],
        "acid": ["lemon juice", "sherry vinegar", "white wine", "rice vinegar", "lime juice"],
        "questions": [
            "Why does my {dish} keep turning out {problem}?",
            "What's the trick to making {dish} that doesn't turn out {problem}?",
            "Should I use {fat} or something else for {dish}?",
            "How do restaurants get {dish} so consistent?",
            "Can {dish} be made ahead, or does it have to be served right away?",
            "How do I rescue {dish} when it turns {problem}?",
            "Is there a way to make {dish} on a {stove} stove without it going {problem}?",
            "How hot should the pan be for {dish}?",
            "What does it mean when a recipe for {dish} says to mount the sauce with butter?",
        ],
        "facts": [
            "A splash of {acid} at the end brightens almost any sauce that tastes flat.",
            "Crowding the pan drops the temperature and the food steams instead of browning.",
            "Fond, the brown bits stuck to the pan, is pure flavor; deglaze it with stock or "
            "{acid} and scrape it up.",
            "Emulsions like hollandaise break when they get too hot; a spoonful of warm water "
            "whisked in off the heat often brings them back.",
            "Risotto wants warm stock added a ladle at a time, with steady but not frantic "
            "stirring.",
            "Mashed potatoes turn gluey when the starch is overworked, so use a ricer and fold in "
            "warm dairy by hand.",
            "Start potatoes in cold salted water so they cook evenly from the outside in.",
            "Mise en place sounds fussy, but having everything chopped before the heat goes on "
            "is what keeps a stir-fry from burning.",
            "{fat} has a different smoke point and flavor, so pick it for the job instead of out "
            "of habit.",
            "Caramel goes from amber to burnt in seconds, so have the cream measured and warm "
            "before you start.",
            "Salt the pasta water until it tastes pleasantly seasoned, not like the sea.",
            "A lumpy béchamel can be saved by whisking hard or passing it through a sieve.",
            "Braises taste better the next day, and the fat is easy to lift off once it sets in "
            "the fridge.",
            "Blanching green vegetables and shocking them in ice water keeps them bright.",
            "For crisp tofu, press it for {minutes} minutes and toss it in a little cornstarch.",
            "Let meat sit at room temperature for {minutes} minutes so the center is not ice "
            "cold when the outside is done.",
            "A cold pan with {fat} and slowly rendered bacon gives crisper strips than a hot one.",
            "Low heat and patience matter more than any trick for caramelized onions; expect "
            "close to an hour.",
            "Day-old rice fries better because the surface has dried out a little.",
            "Whisk eggs for an omelette until no streaks of white remain, then keep the pan "
            "moving.",
            "Sharpen the knife before a big prep session; a dull blade slips and bruises herbs.",
        ],
    },
    "ingredients": {
        "dish": [
            "buttermilk", "brown butter", "fish sauce", "white miso", "smoked paprika", "tahini",
            "anchovies", "preserved lemons", "saffron", "tamarind paste", "gochujang",
            "kosher salt", "bread flour", "Dutch-process cocoa", "vanilla beans", "coconut milk",
            "fresh ginger", "shallots", "capers", "nutritional yeast", "sumac", "cardamom",
        ],
        "problem": [
            "too salty", "too bitter", "too sour", "overpowering", "hard to find", "expensive",
            "stale", "clumpy",
        ],
        "cause": [
            "using table salt where the recipe means kosher salt",
            "spices that have sat in the cupboard for years",
            "adding the strong stuff all at once instead of gradually",
            "swapping ingredients one for one when they behave differently",
            "buying ground spices instead of whole ones",
            "storing it somewhere warm and bright",
        ],
        "fix": [
            "toast whole spices in a dry pan and grind them yourself",
            "start with half the amount and add more after tasting",
            "keep it in an airtight jar away from the stove",
            "buy it in small amounts from a shop with high turnover",
            "balance it with a little sugar or acid",
            "make a quick substitute from what you already have",
        ],
        "sub": [
            "a cup of milk with a tablespoon of lemon juice", "lime zest and a little sugar",
            "soy sauce with a squeeze of lime", "a pinch of turmeric for color",
            "plain yogurt thinned with water", "a mix of paprika and a little cumin",
        ],
        "shelf": ["six months", "a year", "three months", "two years"],
        "anecdotes": [
            "{when} I added {dish} to a stew for {audience}, and {outcome}.",
            "The first time I cooked with {dish} was for {audience}; {outcome}.",
            "{when} I ran out of {dish} halfway through cooking for {audience}, and {outcome}.",
        ],
        "questions": [
            "What can I substitute for {dish} if my store doesn't carry it?",
            "Is {dish} worth buying, or is it just a trend?",
            "How do I keep {dish} from tasting {problem} in a dish?",
            "How long will {dish} stay good once opened?",
            "What's the difference between regular and premium {dish}?",
            "Why does my dish taste {problem} when I add {dish}?",
            "How should I store {dish}?",
            "What are some easy ways to use up a jar of {dish}?",
        ],
        "facts": [
            "In a pinch you can stand in {sub} for the real thing; the flavor is not identical but "
            "it works in most recipes.",
            "Ground spices lose most of their aroma within {shelf}, so buy small jars and write "
            "the date on the lid.",
            "Diamond Crystal and Morton kosher salt have very different densities, so a teaspoon "
            "of one is not a teaspoon of the other.",
            "Fish sauce smells fierce straight from the bottle but melts into savory depth once "
            "it is cooked.",
            "Miso keeps for months in the fridge and adds instant depth to dressings, soups and "
            "even caramel.",
            "Brown butter is just butter cooked until the milk solids toast; it smells like "
            "hazelnuts when it is ready.",
            "A few anchovies dissolved in hot oil disappear completely and make a sauce taste "
            "richer, not fishy.",
            "Saffron is expensive, but a small pinch steeped in warm water goes a long way.",
            "Tahini separates in the jar; stir it thoroughly or the bottom turns into cement.",
            "Dutch-process cocoa is treated to be less acidic, which matters in recipes that rely "
            "on baking soda for lift.",
            "Fresh ginger keeps for months in the freezer, and you can grate it without peeling.",
            "Shallots are milder and sweeter than onions, which is why they shine in vinaigrettes.",
            "Capers packed in salt have a cleaner flavor than brined ones, but rinse them well.",
            "Full-fat coconut milk separates in the can; the thick cream on top is great for "
            "whipping.",
            "Gochujang brings heat, sweetness and funk at once, so taste before adding extra "
            "sugar.",
            "Preserved lemons are mostly about the rind; scrape away the pulp and chop the peel "
            "finely.",
            "Vanilla extract is fine for most baking, and beans are worth it only where vanilla is "
            "the star, like custard.",
            "Nutritional yeast adds a cheesy, savory note that makes popcorn dangerously "
            "addictive.",
            "Sumac has a tart, lemony flavor that brightens grilled vegetables without extra "
            "liquid.",
            "Whole cardamom pods keep far longer than ground cardamom; crack them with the flat "
            "of a knife.",
        ],
    },
    "equipment": {
        "dish": [
            "cast iron skillet", "carbon steel wok", "Dutch oven", "stand mixer", "chef's knife",
            "instant-read thermometer", "pressure cooker", "rimmed sheet pan", "food processor",
            "immersion blender", "mandoline", "nonstick pan", "kitchen scale", "baking stone",
            "microplane grater", "rice cooker", "air fryer", "sous vide circulator",
            "stainless steel saucepan", "bench scraper",
        ],
        "problem": [
            "rusty", "sticky", "warped", "dull", "stained", "scratched", "flaking",
            "smoking a lot",
        ],
        "cause": [
            "putting it through the dishwasher", "leaving it to soak in the sink overnight",
            "heating it empty on high", "storing it loose in a drawer",
            "using metal utensils on a delicate coating", "a seasoning layer that was too thick",
            "plunging a hot pan into cold water",
        ],
        "fix": [
            "wash it by hand and dry it on the stove",
            "wipe on a very thin layer of oil after every use",
            "hone the edge every few uses and sharpen it a couple of times a year",
            "store it on a magnetic strip or in a blade guard",
            "let it cool down before washing it",
            "scrub the rust off with steel wool and reseason it",
            "switch to wooden or silicone utensils",
        ],
        "price": ["about thirty dollars", "under fifty dollars", "around a hundred dollars",
                  "less than twenty dollars"],
        "anecdotes": [
            "{when} I used my {dish} to cook for {audience}, and {outcome}.",
            "My {dish} got its first real test when I cooked for {audience}; {outcome}.",
            "{when} I borrowed a friend's {dish} to cook for {audience}, and {outcome}.",
        ],
        "questions": [
            "Is a {dish} worth buying for a small kitchen?",
            "My {dish} is {problem}. Can I save it?",
            "How do I clean a {dish} without ruining it?",
            "What should I look for in a good {dish}?",
            "Do I really need a {dish}, or can I get by without one?",
            "Why does my {dish} keep getting {problem}?",
            "What's the best first {dish} for someone just getting into cooking?",
            "How long should a decent {dish} last?",
        ],
        "facts": [
            "A good {dish} does not need to be expensive; a solid one costs {price} and lasts for "
            "years with basic care.",
            "Cast iron rust is almost always fixable with steel wool, a thin coat of oil and an "
            "hour in a hot oven.",
            "Seasoning is built from many thin layers of polymerized oil, so thick coats turn "
            "sticky instead of slick.",
            "Nonstick coatings wear out faster at high heat, so keep them for eggs and fish.",
            "A honing steel realigns the edge; it does not remove metal the way sharpening does.",
            "An instant-read thermometer is the single cheapest upgrade that improves almost "
            "every dish.",
            "A kitchen scale makes baking repeatable and means fewer measuring cups to wash.",
            "Enameled Dutch ovens should not be heated empty for long, or the enamel can crack.",
            "Carbon steel behaves a lot like cast iron but heats faster and weighs much less.",
            "A mandoline is wonderful for thin, even slices, but always use the guard; the "
            "blade does not forgive.",
            "Pressure cookers turn dried beans into dinner in under an hour without soaking.",
            "Air fryers are really small convection ovens, so most oven recipes convert if you "
            "drop the temperature by about 25°F.",
            "A heavy rimmed sheet pan does not warp as easily, and it doubles as a roasting pan.",
            "Stainless steel pans release food once a crust forms, so give them time before you "
            "flip.",
            "Baking stones need {minutes} minutes of preheating at full temperature to store "
            "enough heat for pizza.",
            "A bench scraper costs almost nothing and is the fastest way to move chopped food "
            "from the board to the pan.",
            "Immersion blenders save you from pouring hot soup into a blender jar in batches.",
            "Store knives on a magnetic strip or in guards; banging around in a drawer chips the "
            "edge.",
            "Never pour cold water into a screaming hot pan; the sudden shock can warp the base.",
            "Rice cookers keep rice warm for hours, but for food safety do not leave it on warm "
            "overnight.",
        ],
    },
    "nutrition": {
        "dish": [
            "lentil soup", "overnight oats", "grain bowls", "roasted chickpeas", "Greek yogurt",
            "brown rice", "egg muffins", "black bean chili", "quinoa salad", "green smoothies",
            "baked salmon", "whole wheat pasta", "tofu scramble", "roasted sweet potatoes",
            "chia pudding", "vegetable stir-fry", "homemade granola", "chicken and vegetable soup",
        ],
        "problem": [
            "bland", "too heavy", "boring by Wednesday", "not filling enough", "too high in sodium",
            "too sweet", "soggy after a day in the fridge",
        ],
        "cause": [
            "relying on salt instead of herbs, spices and acid for flavor",
            "skipping protein at breakfast", "store-bought sauces with hidden sugar",
            "cooking everything in one giant batch with no variation",
            "leaving out fat entirely, which makes meals less satisfying",
            "dressing salads too far ahead",
        ],
        "fix": [
            "add a squeeze of citrus and a handful of fresh herbs at the end",
            "prep components separately and mix them differently through the week",
            "include a source of protein and fiber at every meal",
            "make your own dressings so you control the sugar and salt",
            "keep the dressing in a small jar and add it just before eating",
            "swap half the pasta for extra vegetables",
        ],
        "protein": ["eggs", "Greek yogurt", "lentils", "tofu", "chicken thighs", "canned tuna",
                    "edamame", "cottage cheese"],
        "questions": [
            "My {dish} always ends up {problem}. How can I fix that without adding a ton of salt?",
            "Are meals like {dish} actually healthy, or is that just marketing?",
            "What's an easy way to add more protein to {dish}?",
            "How do I meal prep {dish} so it isn't {problem}?",
            "Is it okay to eat {dish} every day?",
            "What should I pair with {dish} to make it a full meal?",
            "How do I get my kids to eat {dish}?",
            "Can {dish} be frozen for quick lunches?",
        ],
        "facts": [
            "Protein and fiber at breakfast keep most people full much longer than a pastry and "
            "coffee.",
            "A squeeze of lemon and plenty of herbs let you cut the salt in soups without them "
            "tasting flat.",
            "Beans and lentils are cheap, keep for ages and bring both protein and fiber.",
            "Frozen vegetables are picked and frozen at peak ripeness, so they are often as "
            "nutritious as fresh.",
            "Store-bought dressings and sauces can hide a surprising amount of sugar, so check "
            "the label.",
            "Adding {protein} is an easy way to make a light meal more filling.",
            "Whole grains take a little longer to cook, but you can batch them and freeze them "
            "flat in bags.",
            "A little fat, like olive oil or avocado, helps your body absorb some vitamins from "
            "vegetables.",
            "Roasting vegetables at high heat caramelizes their sugars, which wins over a lot of "
            "picky eaters.",
            "Meal prep works better when you cook components, not finished meals, and combine "
            "them differently each day.",
            "Greek yogurt has roughly twice the protein of regular yogurt, and it works in place "
            "of sour cream.",
            "Soups and chilis freeze well for about three months in portion-sized containers.",
            "Kids are more likely to try food they helped make, even if they only washed the "
            "vegetables.",
            "Drinking your fruit as juice removes most of the fiber, so whole fruit keeps you "
            "fuller.",
            "Salting beans early does not make them tough; it actually seasons them better.",
            "Nuts and seeds are nutritious but dense in calories, so a small handful is a sensible "
            "portion.",
            "Swapping half the rice for cauliflower rice is an easy way to add vegetables to a "
            "bowl.",
            "Plan one or two flexible meals a week to use up whatever vegetables are left.",
            "Overnight oats need about a one-to-one ratio of oats to liquid, plus a little extra "
            "if you add chia.",
        ],
    },
}

# Words used to make near-duplicates: a word and a close substitute.
SYNONYMS = {
    "usually": "generally", "really": "truly", "great": "excellent", "little": "bit of",
    "easy": "simple", "fast": "quickly", "big": "large", "cheap": "inexpensive",
    "always": "nearly always", "often": "frequently", "pretty": "fairly", "good": "decent",
    "start": "begin", "keep": "hold", "make": "get", "thin": "light", "best": "nicest",
    "try": "attempt", "first": "very first", "most": "many", "easily": "readily",
}

NON_ENGLISH: list[tuple[str, str]] = [
    ("es", "¿Por qué mi pan de masa madre sale tan denso? Lo dejo fermentar toda la noche en la "
           "nevera y por la mañana lo horneo a 230 grados en una olla de hierro. La corteza queda "
           "bonita, pero la miga está apelmazada y húmeda. ¿Será que la masa madre no está lo "
           "bastante activa o que le falta tiempo a temperatura ambiente?"),
    ("es", "Un consejo para la tortilla de patatas: fríe las patatas a fuego lento en mucho "
           "aceite, escúrrelas bien y déjalas reposar con el huevo batido unos diez minutos antes "
           "de cuajarla. Así queda jugosa por dentro. Para darle la vuelta usa un plato grande y "
           "hazlo con decisión, sin miedo."),
    ("es", "Para que el arroz de la paella no se pegue ni se pase, no lo remuevas después de "
           "añadir el caldo. Usa arroz bomba, calcula unas tres partes de caldo por una de arroz "
           "y deja que se forme el socarrat los últimos minutos subiendo un poco el fuego."),
    ("es", "¿Cuánto tiempo se puede guardar el caldo casero en el frigorífico? Lo hice el domingo "
           "con huesos de pollo y verduras, lo colé y lo metí en tarros de cristal. No sé si es "
           "mejor congelarlo en porciones pequeñas para usarlo durante el mes."),
    ("es", "Mi truco para unas croquetas cremosas es cocinar bien la harina en la mantequilla, "
           "añadir la leche caliente poco a poco y dejar la bechamel toda la noche en la nevera. "
           "Al día siguiente se forman sin problema y no se abren al freírlas en aceite bien "
           "caliente."),
    ("fr", "Pourquoi ma pâte à choux retombe-t-elle à la sortie du four ? Je dessèche bien la "
           "panade, j'ajoute les œufs un par un et je cuis à 180 degrés pendant trente minutes. "
           "Les choux gonflent joliment puis s'affaissent dès que j'ouvre la porte du four."),
    ("fr", "Astuce pour une mayonnaise qui ne rate jamais : tous les ingrédients doivent être à "
           "la même température. Mélangez le jaune d'œuf avec la moutarde, puis versez l'huile en "
           "filet très fin en fouettant sans arrêt. Si elle tranche, repartez d'un nouveau jaune "
           "et incorporez-y la mayonnaise ratée petit à petit."),
    ("fr", "Pour un bœuf bourguignon fondant, faites mariner la viande une nuit dans le vin "
           "rouge avec les aromates, saisissez-la bien par petites quantités et laissez mijoter "
           "à feu très doux pendant au moins trois heures. Le plat est encore meilleur le "
           "lendemain."),
    ("fr", "Combien de temps peut-on garder une quiche au réfrigérateur ? J'en ai préparé deux "
           "pour un pique-nique qui a été annulé. Est-ce que la pâte brisée supporte la "
           "congélation ou vaut-il mieux la manger dans les trois jours ?"),
    ("fr", "Pour réussir une crème brûlée, chauffez la crème avec la gousse de vanille fendue, "
           "versez-la lentement sur les jaunes battus avec le sucre, puis faites cuire au bain-"
           "marie à four doux. Caramélisez le sucre au chalumeau juste avant de servir."),
    ("de", "Warum wird mein Hefezopf so trocken? Ich lasse den Teig zweimal gehen, backe ihn bei "
           "180 Grad etwa vierzig Minuten und bestreiche ihn vorher mit Eigelb. Außen sieht er "
           "wunderschön aus, aber innen ist er schon am nächsten Tag krümelig."),
    ("de", "Ein Tipp für knusprige Bratkartoffeln: Die Kartoffeln am Vortag kochen und über "
           "Nacht auskühlen lassen. Dann in Scheiben schneiden und in einer heißen Pfanne mit "
           "wenig Fett braten, ohne sie ständig zu wenden. Zwiebeln und Speck erst am Ende "
           "dazugeben."),
    ("de", "Wie lange darf man gekochten Reis im Kühlschrank aufbewahren? Ich koche sonntags "
           "immer eine große Menge für die ganze Woche vor, habe aber gelesen, dass aufgewärmter "
           "Reis gefährlich sein kann. Reicht es, ihn richtig heiß zu machen?"),
    ("de", "Für einen saftigen Schweinebraten die Schwarte rautenförmig einschneiden, kräftig "
           "salzen und den Braten zuerst mit der Schwarte nach unten in etwas Wasser garen. "
           "Danach umdrehen und bei starker Hitze knusprig werden lassen. Die Soße aus dem "
           "Bratensatz ist das Beste daran."),
    ("de", "Mein Apfelstrudel reißt beim Ausziehen des Teigs immer ein. Ich nehme Mehl Type 405, "
           "etwas Öl und lauwarmes Wasser und lasse ihn eine Stunde ruhen. Sollte ich den Teig "
           "länger kneten oder lieber ein anderes Mehl verwenden?"),
]

LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris "
    "nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse "
    "cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui "
    "officia deserunt mollit anim id est laborum"
).split()

SHORT_JUNK = ["yum", "great recipe!", "thx", "ok", "nice", "love it", "so good", "+1",
              "first!", "bump", "following"]
